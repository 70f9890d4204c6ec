//! The terms of claiming and dialing calls: leases (owner, time to live, and the call's attempt as
//! the fencing token), the dial limits every instance shares, and what a claim or a takeover
//! gives back.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::Call;

/// Who holds a claim on a call and how long it holds unless renewed.
#[derive(Debug, Clone)]
pub struct LeaseTerms {
    /// The instance's name, written on the call.
    pub owner: String,
    /// How long the lease lasts from when it is taken or renewed, by the store's clock.
    pub ttl: Duration,
}

/// Limits on dialing that hold for all instances sharing the store together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialLimits {
    /// At most this many dials (first dials and resends) in any rolling window of this length.
    pub rate: Option<(u32, Duration)>,
    /// At most this many calls between being claimed and ending.
    pub max_active: Option<u32>,
}

impl DialLimits {
    /// No limits (tests and benchmarks).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// A rate of `dials` in any rolling `window`, as Telnyx counts it, spread evenly: the window
    /// is cut into as many equal parts as it has whole seconds (or dials, if fewer) and each part
    /// gets its share, so a burst never spends the whole window's allowance at once. Dials are
    /// paced when claimed but counted by Telnyx when they arrive, and some take longer to leave
    /// than others; an even spread, with 5 % of slack on each part, keeps their arrivals within
    /// the limit too. Telnyx's default, 150 per 5 s, becomes 30 per 1.05 s.
    pub fn spread(dials: u32, window: Duration) -> (u32, Duration) {
        let parts = dials.min(u32::try_from(window.as_secs()).unwrap_or(u32::MAX)).max(1);
        let part = window / parts;
        (dials / parts, part + part / 20)
    }
}

/// What a claim took, and why it took no more.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    /// The calls now dialing under the claimer's lease, earliest due first.
    pub calls: Vec<Call>,
    /// Set when the limits stopped the claim, whether or not due calls were left.
    pub held_back: Option<HeldBack>,
}

/// Which limit stopped a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBack {
    /// The dial rate: the next dial may go at this instant (store's clock).
    Pacing(DateTime<Utc>),
    /// The most calls in progress at once: the next dial may go when one of them ends.
    ActiveCalls,
}

/// The rules of taking over an orphaned dial.
#[derive(Debug, Clone, Copy)]
pub struct Takeover {
    /// At start-up: the dials this instance's previous run left are orphaned at once, without
    /// waiting for their leases to run out.
    pub own_previous_run: bool,
    /// A dial first sent less than this long ago (store's clock) is resent with the same command
    /// id, which Telnyx ignores if the first one arrived; an older one is abandoned.
    pub resend_within: Duration,
}

/// A dial taken over, with the call as it now is (its attempt bumped).
#[derive(Debug, Clone)]
pub enum TakenOver {
    /// Send the dial again, with the command id it was first sent with.
    Resend(Call),
    /// Too late to resend safely: fail the call rather than risk ringing twice.
    Abandon(Call),
}

/// How much of the limits is in use at one moment, as a backend counted it inside a claim.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    /// The store's clock when counted.
    pub now: DateTime<Utc>,
    /// Dials logged within the rate window.
    pub dials_in_window: u32,
    /// The oldest of them.
    pub oldest_dial: Option<DateTime<Utc>>,
    /// Calls between claim and end.
    pub active: u32,
}

impl DialLimits {
    /// How many dials may go now, at most `wanted`, and what holds back any beyond that.
    pub(super) fn room(&self, wanted: u32, usage: &Usage) -> (u32, Option<HeldBack>) {
        let by_rate = self.rate.map_or(u32::MAX, |(dials, _)| dials.saturating_sub(usage.dials_in_window));
        let by_active = self.max_active.map_or(u32::MAX, |most| most.saturating_sub(usage.active));
        let room = wanted.min(by_rate).min(by_active);
        if room == wanted {
            return (room, None);
        }
        let held = match self.rate {
            Some((_, window)) if by_rate <= by_active => {
                // The window is full once these dials go; it frees up as its oldest dial ages out.
                let oldest = usage.oldest_dial.unwrap_or(usage.now);
                HeldBack::Pacing(oldest + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX))
            }
            _ => HeldBack::ActiveCalls,
        };
        (room, Some(held))
    }
}

/// The statuses of calls between claim and end, as an SQL list (`'dialing', …`); they are our
/// own fixed names, so writing them inline is safe.
pub(super) fn in_progress_sql() -> String {
    use crate::domain::CallStatus;
    let names: Vec<String> = CallStatus::ALL
        .iter()
        .filter(|status| **status != CallStatus::Scheduled && !status.is_terminal())
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(dials: u32, active: u32) -> Usage {
        Usage { now: DateTime::UNIX_EPOCH, dials_in_window: dials, oldest_dial: None, active }
    }

    #[test]
    fn without_limits_everything_wanted_may_go() {
        assert_eq!(DialLimits::unlimited().room(500, &usage(10_000, 10_000)), (500, None));
    }

    #[test]
    fn a_nearly_full_window_lets_the_rest_go_and_says_when_it_frees_up() {
        let limits = DialLimits { rate: Some((150, Duration::from_secs(5))), max_active: None };
        let mut now = usage(140, 0);
        now.oldest_dial = Some(DateTime::UNIX_EPOCH + chrono::Duration::seconds(2));

        let (room, held) = limits.room(100, &now);

        assert_eq!(room, 10);
        assert_eq!(held, Some(HeldBack::Pacing(DateTime::UNIX_EPOCH + chrono::Duration::seconds(7))));
    }

    #[test]
    fn the_tighter_of_the_two_limits_is_the_one_named() {
        let limits = DialLimits { rate: Some((150, Duration::from_secs(5))), max_active: Some(10) };

        assert_eq!(limits.room(100, &usage(0, 8)), (2, Some(HeldBack::ActiveCalls)));
    }

    #[test]
    fn telnyx_s_default_rate_is_spread_over_each_second() {
        assert_eq!(DialLimits::spread(150, Duration::from_secs(5)), (30, Duration::from_millis(1050)));
    }

    #[test]
    fn a_spread_rate_never_allows_more_than_the_window_holds() {
        for (dials, secs) in [(2, 5), (7, 2), (10, 1), (1000, 5), (1, 60)] {
            let (per_part, part) = DialLimits::spread(dials, Duration::from_secs(secs));
            let parts = (Duration::from_secs(secs).as_secs_f64() / part.as_secs_f64()).ceil() as u32;
            assert!(per_part >= 1 && per_part * parts <= dials, "{dials} per {secs} s: {per_part} per {part:?}");
        }
    }

    #[test]
    fn the_calls_in_progress_are_the_ones_after_scheduled_and_before_the_end() {
        assert_eq!(in_progress_sql(), "'dialing', 'ringing', 'answered', 'speaking'");
    }
}

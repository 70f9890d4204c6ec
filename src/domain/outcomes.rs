//! How the calls of the last days ended, day by day in a chosen time zone: what the page's chart
//! shows. The store counts ended calls per quarter hour (every zone's offset is a whole number of
//! quarter hours, so no bucket straddles a local midnight); this module folds them into days.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::CallStatus;

/// How many calls ended in one status during one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeCount {
    /// The start of the bucket (a whole multiple of the bucket length since the Unix epoch).
    pub bucket_start: DateTime<Utc>,
    /// The terminal status the calls ended in.
    pub status: CallStatus,
    /// How many calls.
    pub count: u32,
}

/// The length of the store's counting buckets.
pub const BUCKET_SECS: u32 = 15 * 60;

/// How a dialed call ended. Cancelled and missed calls were never dialed, so they are not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The joke was told.
    Completed,
    /// Nobody picked up.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The callee declined.
    Rejected,
    /// Telnyx refused the dial or the call broke.
    Failed,
}

impl Outcome {
    /// Every outcome, in the order the chart stacks them (the good news at the bottom).
    pub const ALL: [Outcome; 5] = [Self::Completed, Self::NoAnswer, Self::Busy, Self::Rejected, Self::Failed];

    /// The outcome a terminal status stands for, if it is one.
    pub fn of(status: CallStatus) -> Option<Self> {
        match status {
            CallStatus::Completed => Some(Self::Completed),
            CallStatus::NoAnswer => Some(Self::NoAnswer),
            CallStatus::Busy => Some(Self::Busy),
            CallStatus::Rejected => Some(Self::Rejected),
            CallStatus::Failed => Some(Self::Failed),
            _ => None,
        }
    }

    /// The status name it shares with the API, e.g. `no_answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => CallStatus::Completed.as_str(),
            Self::NoAnswer => CallStatus::NoAnswer.as_str(),
            Self::Busy => CallStatus::Busy.as_str(),
            Self::Rejected => CallStatus::Rejected.as_str(),
            Self::Failed => CallStatus::Failed.as_str(),
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or_default()
    }
}

/// How the calls that ended on one local day went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayOutcomes {
    /// The day, in the zone asked for.
    pub day: NaiveDate,
    /// How many calls ended in each outcome, in [`Outcome::ALL`] order.
    pub counts: [u32; 5],
}

impl DayOutcomes {
    /// How many calls ended in `outcome`.
    pub fn count(&self, outcome: Outcome) -> u32 {
        self.counts[outcome.index()]
    }

    /// How many calls ended that day.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }
}

/// The last `days` local days up to and including today, oldest first, and the instant the
/// first of them began.
pub fn window(now: DateTime<Utc>, zone: Tz, days: u32) -> (Vec<NaiveDate>, DateTime<Utc>) {
    let today = now.with_timezone(&zone).date_naive();
    let first = today - Duration::days(i64::from(days.max(1)) - 1);
    let list = first.iter_days().take_while(|day| *day <= today).collect();
    (list, start_of(first, zone))
}

/// When `day` began in `zone`. A few zones skip midnight when their clocks change; their day
/// then began at the first instant that exists, which is at most an hour or two later.
fn start_of(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    (0..=3)
        .filter_map(|hour| zone.from_local_datetime(&day.and_time(NaiveTime::MIN + Duration::hours(hour))).earliest())
        .next()
        .map_or_else(|| day.and_time(NaiveTime::MIN).and_utc(), |start| start.with_timezone(&Utc))
}

/// Folds the store's counts into `days` (as [`window`] gave them); counts outside them are
/// dropped, and days without calls are kept with zero counts.
pub fn by_day(counts: &[OutcomeCount], zone: Tz, days: &[NaiveDate]) -> Vec<DayOutcomes> {
    let mut tally: Vec<DayOutcomes> = days.iter().map(|day| DayOutcomes { day: *day, counts: [0; 5] }).collect();
    for count in counts {
        let Some(outcome) = Outcome::of(count.status) else { continue };
        let day = count.bucket_start.with_timezone(&zone).date_naive();
        if let Some(entry) = tally.iter_mut().find(|entry| entry.day == day) {
            entry.counts[outcome.index()] += count.count;
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::Los_Angeles;
    use chrono_tz::Asia::Kathmandu;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    fn count(start: &str, status: CallStatus, count: u32) -> OutcomeCount {
        OutcomeCount { bucket_start: at(start), status, count }
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("valid date")
    }

    /// The last `days` days in `zone` as seen at `now`, with `counts` folded in.
    fn tally(now: &str, zone: Tz, days: u32, counts: &[OutcomeCount]) -> Vec<DayOutcomes> {
        let (days, _) = window(at(now), zone, days);
        by_day(counts, zone, &days)
    }

    #[test]
    fn the_window_ends_today_in_the_zone_and_starts_at_its_first_local_midnight() {
        // 03:00 UTC on the 10th is still the evening of the 9th in Los Angeles (UTC-8 in winter).
        let (days, since) = window(at("2026-01-10T03:00:00Z"), Los_Angeles, 7);

        assert_eq!(days.first(), Some(&date("2026-01-03")));
        assert_eq!(days.last(), Some(&date("2026-01-09")));
        assert_eq!(days.len(), 7);
        assert_eq!(since, at("2026-01-03T08:00:00Z"));
    }

    #[test]
    fn calls_are_counted_on_the_local_day_they_ended() {
        let counts = [
            count("2026-01-09T07:45:00Z", CallStatus::Completed, 2), // 23:45 on the 8th in LA
            count("2026-01-09T08:00:00Z", CallStatus::Completed, 1), // midnight starting the 9th
            count("2026-01-09T08:00:00Z", CallStatus::Busy, 3),
        ];

        let tally = tally("2026-01-10T03:00:00Z", Los_Angeles, 7, &counts);

        let eighth = tally.iter().find(|d| d.day == date("2026-01-08")).expect("the 8th");
        let ninth = tally.iter().find(|d| d.day == date("2026-01-09")).expect("the 9th");
        assert_eq!((eighth.count(Outcome::Completed), eighth.total()), (2, 2));
        assert_eq!((ninth.count(Outcome::Completed), ninth.count(Outcome::Busy), ninth.total()), (1, 3, 4));
    }

    #[test]
    fn quarter_hour_offsets_still_fall_on_the_right_day() {
        // Kathmandu is UTC+5:45, so 18:15 UTC is exactly midnight there.
        let counts = [
            count("2026-01-09T18:00:00Z", CallStatus::Failed, 1),
            count("2026-01-09T18:15:00Z", CallStatus::Failed, 1),
        ];

        let tally = tally("2026-01-10T12:00:00Z", Kathmandu, 2, &counts);

        assert_eq!(tally.iter().map(DayOutcomes::total).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn cancelled_missed_and_out_of_window_calls_are_not_outcomes() {
        let counts = [
            count("2026-01-10T12:00:00Z", CallStatus::Cancelled, 5),
            count("2026-01-10T12:00:00Z", CallStatus::Missed, 5),
            count("2025-12-01T12:00:00Z", CallStatus::Completed, 5),
        ];

        let tally = tally("2026-01-10T12:00:00Z", Los_Angeles, 1, &counts);

        assert_eq!(tally, [DayOutcomes { day: date("2026-01-10"), counts: [0; 5] }]);
    }

    #[test]
    fn a_day_that_skips_midnight_begins_at_its_first_real_instant() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2025-09-07.
        let start = start_of(date("2025-09-07"), chrono_tz::America::Santiago);

        assert_eq!(start, at("2025-09-07T04:00:00Z"));
    }
}

//! Deciding a rule's next call: the pure part of materialising, given the rule, its waiting call
//! (if any) and the time, so every catch-up and quiet-hours case is a plain unit test.
//!
//! An occurrence counts as missed when it is more than the grace period (`DIALAJOKE_GRACE_SECS`,
//! the same tolerance one-off calls get) behind. Missed occurrences follow the rule's catch-up
//! policy: `skip` drops them all; `once` makes up the most recent one, once, if it is at most the
//! policy's window late and the callee is not in their quiet hours, and drops the rest. An occurrence that lands in the callee's quiet hours
//! is moved to their start when quiet hours defer (the occurrences it then overtakes are merged
//! into it, so a night of hourly occurrences rings once in the morning, not eight times).

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::{CatchUp, Occurrence, Rule};
use crate::domain::CallId;
use crate::domain::hours::{CallingHours, QuietAction, callee_zone};
use crate::domain::limits::LimitHit;

/// What planning needs to know besides the rule.
#[derive(Debug, Clone, Copy)]
pub struct PlanSettings {
    /// How late an occurrence may be before it counts as missed.
    pub grace: Duration,
    /// When callees may be rung.
    pub hours: CallingHours,
    /// What happens to a call in quiet hours.
    pub quiet: QuietAction,
}

/// The rule's waiting (scheduled) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Its id.
    pub id: CallId,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// What to do with a waiting call that fell due while the service was down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitingAction {
    /// Dial it now: it is the call the catch-up policy makes up.
    DialNow,
    /// Do not dial it; it ends `missed` for this reason.
    Miss(String),
}

/// A call to make for an occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextCall {
    /// The occurrence it stands for (its key, with the rule).
    pub occurrence: Occurrence,
    /// When it is due: the occurrence, now for a made-up one, or the start of calling hours.
    pub due: DateTime<Utc>,
    /// Why it is not due at its occurrence, in words.
    pub note: Option<String>,
}

/// What materialising a rule does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// What happens to the waiting call.
    pub waiting: Option<(CallId, WaitingAction)>,
    /// The call to make.
    pub next: Option<NextCall>,
    /// The rule's new cursor (unchanged when nothing is made).
    pub cursor: Option<DateTime<Utc>>,
    /// What to note on the rule (occurrences skipped).
    pub note: Option<String>,
}

/// The plan for `rule` at `now`, whose waiting call is `waiting`.
pub fn plan(rule: &Rule, waiting: Option<Waiting>, now: DateTime<Utc>, settings: PlanSettings) -> Plan {
    let zone = rule.timezone.tz();
    let missed_before = now - settings.grace;
    let latest = rule.recurrence.latest_until(now, zone).filter(|at| at.instant() > rule.cursor);
    let missed = match waiting {
        Some(call) if call.due >= missed_before => return Plan::default(),
        Some(call) if latest.is_none() => return plan_waiting_only(rule, call, now, settings),
        Some(call) => Some(call.due),
        None => rule
            .recurrence
            .next_after(rule.cursor, zone)
            .map(Occurrence::instant)
            .filter(|first| *first < missed_before),
    };
    let mut plan = Plan::default();
    let chosen = match (missed, latest) {
        (_, Some(current)) if current.instant() >= missed_before => Some((current, current.instant())),
        (None, _) => rule.recurrence.next_after(rule.cursor, zone).map(|first| (first, first.instant())),
        (Some(first_missed), _) => {
            // Without a waiting call the first missed time is itself an occurrence.
            let last_missed = latest.unwrap_or(Occurrence::at(first_missed));
            let made_up = may_make_up(rule, last_missed.instant(), now, settings);
            let last_skipped = if made_up { previous(rule, last_missed) } else { Some(last_missed) };
            plan.note = last_skipped
                .filter(|last| last.instant() >= first_missed)
                .map(|last| skipped_note(first_missed, last.instant(), zone));
            if made_up {
                Some((last_missed, now))
            } else {
                rule.recurrence.next_after(now, zone).map(|next| (next, next.instant()))
            }
        }
    };
    if let Some(call) = waiting {
        let replaced = chosen.is_some_and(|(occurrence, _)| occurrence.instant() <= now);
        let why =
            if replaced { "a later occurrence is made instead" } else { policy_reason(rule.catch_up, call.due, now) };
        plan.waiting = Some((call.id, WaitingAction::Miss(skipped_reason(call.due, zone, why))));
    }
    if let Some((occurrence, due)) = chosen {
        let next = make(rule, occurrence, due, settings);
        plan.cursor = Some(next.occurrence.instant().max(next.due));
        plan.next = Some(next);
    }
    plan
}

/// The waiting call is the only missed occurrence: made up now, or dropped for the next one.
fn plan_waiting_only(rule: &Rule, call: Waiting, now: DateTime<Utc>, settings: PlanSettings) -> Plan {
    let zone = rule.timezone.tz();
    if may_make_up(rule, call.due, now, settings) {
        return Plan { waiting: Some((call.id, WaitingAction::DialNow)), ..Plan::default() };
    }
    let next = rule.recurrence.next_after(now.max(rule.cursor), zone).map(|at| make(rule, at, at.instant(), settings));
    Plan {
        waiting: Some((
            call.id,
            WaitingAction::Miss(skipped_reason(call.due, zone, policy_reason(rule.catch_up, call.due, now))),
        )),
        cursor: next.as_ref().map(|n| n.occurrence.instant().max(n.due)),
        next,
        note: None,
    }
}

/// Whether a call missed at `missed` may be made up at `now`: the policy makes up, the call is
/// not later than its window, and `now` is within the callee's calling hours (a make-up moved to
/// the next morning would be far beyond any window).
fn may_make_up(rule: &Rule, missed: DateTime<Utc>, now: DateTime<Utc>, settings: PlanSettings) -> bool {
    let in_window = matches!(rule.catch_up, CatchUp::Once { within } if now - missed <= within);
    in_window && settings.hours.next_allowed(now, callee_zone(rule.timezone, &rule.to)).is_none()
}

/// The occurrence before `at`.
fn previous(rule: &Rule, at: Occurrence) -> Option<Occurrence> {
    rule.recurrence.latest_until(at.instant() - Duration::seconds(1), rule.timezone.tz())
}

/// Why a call missed at `missed` is not made up at `now`.
fn policy_reason(catch_up: CatchUp, missed: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    match catch_up {
        CatchUp::Skip => "this rule skips missed calls",
        CatchUp::Once { within } if now - missed <= within => "the callee's quiet hours had begun",
        CatchUp::Once { .. } => "too late to make up",
    }
}

/// The call for `occurrence`, due at `due` unless that is in the callee's quiet hours and they
/// defer calls.
fn make(rule: &Rule, occurrence: Occurrence, due: DateTime<Utc>, settings: PlanSettings) -> NextCall {
    let zone = rule.timezone.tz();
    let mut note = (due > occurrence.instant())
        .then(|| format!("made up: it fell due at {} while the service was down", local(occurrence.instant(), zone)));
    let callee = callee_zone(rule.timezone, &rule.to);
    let moved = match settings.quiet {
        QuietAction::Defer => settings.hours.next_allowed(due, callee),
        QuietAction::Mark => None,
    };
    if let Some(allowed) = moved {
        note = Some(format!("moved from {} to {}: quiet hours", local(due, callee), local(allowed, callee)));
    }
    NextCall { occurrence, due: moved.unwrap_or(due), note }
}

/// The rule's note when the call for `next` was not made because a limit was reached.
pub fn limit_note(rule: &Rule, next: &NextCall, hit: &LimitHit) -> String {
    format!("skipped the call due at {}: {hit}", local(next.due, rule.timezone.tz()))
}

fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%a %d %b %H:%M %Z").to_string()
}

fn skipped_reason(due: DateTime<Utc>, zone: Tz, why: &str) -> String {
    format!("fell due at {} while the service was down; {why}", local(due, zone))
}

fn skipped_note(first: DateTime<Utc>, last: DateTime<Utc>, zone: Tz) -> String {
    if first == last {
        return format!("skipped the call due at {} (the service was down)", local(first, zone));
    }
    format!("skipped the calls due from {} to {} (the service was down)", local(first, zone), local(last, zone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PhoneNumber, Timezone};
    use crate::domain::{Recurrence, RuleId, RuleStatus};
    use chrono::{NaiveTime, Weekday};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    /// A Dublin rule (GMT in January, so local times equal UTC) whose cursor is `cursor`.
    fn rule(recurrence: Recurrence, catch_up: CatchUp, cursor: &str) -> Rule {
        Rule {
            id: RuleId::new(),
            to: PhoneNumber::parse("+353 1 555 0100").expect("valid"),
            timezone: Timezone::parse("Europe/Dublin").expect("zone"),
            recurrence,
            catch_up,
            status: RuleStatus::Active,
            cursor: utc(cursor),
            note: None,
            next_call: None,
            created_at: utc(cursor),
            updated_at: utc(cursor),
        }
    }

    fn daily(hour: u32) -> Recurrence {
        Recurrence::daily(NaiveTime::from_hms_opt(hour, 0, 0).expect("time"))
    }

    fn settings(hours: &str) -> PlanSettings {
        PlanSettings { grace: Duration::minutes(10), hours: hours.parse().expect("hours"), quiet: QuietAction::Defer }
    }

    fn call(occurrence: &str, due: &str) -> NextCall {
        NextCall { occurrence: Occurrence::at(utc(occurrence)), due: utc(due), note: None }
    }

    #[test]
    fn a_rule_without_a_waiting_call_gets_its_next_occurrence() {
        let sundays = Recurrence::weekly(Weekday::Sun, NaiveTime::from_hms_opt(10, 0, 0).expect("time"));
        let rule = rule(sundays, CatchUp::DEFAULT, "2026-01-14T12:00:00Z");

        let plan = plan(&rule, None, utc("2026-01-14T12:00:00Z"), settings("off"));

        assert_eq!(plan.next, Some(call("2026-01-18T10:00:00Z", "2026-01-18T10:00:00Z")));
        assert_eq!(plan.cursor, Some(utc("2026-01-18T10:00:00Z")));
        assert_eq!(plan.waiting, None);
    }

    #[test]
    fn a_rule_whose_call_is_waiting_on_time_is_left_alone() {
        let rule = rule(daily(10), CatchUp::DEFAULT, "2026-01-15T10:00:00Z");
        let waiting = Waiting { id: CallId::new(), due: utc("2026-01-15T10:00:00Z") };

        assert_eq!(plan(&rule, Some(waiting), utc("2026-01-15T09:00:00Z"), settings("off")), Plan::default());
    }

    #[test]
    fn a_waiting_call_missed_by_less_than_the_window_is_dialled_once_now() {
        let rule = rule(daily(10), CatchUp::DEFAULT, "2026-01-15T10:00:00Z");
        let waiting = Waiting { id: CallId::new(), due: utc("2026-01-15T10:00:00Z") };

        let plan = plan(&rule, Some(waiting), utc("2026-01-15T10:45:00Z"), settings("off"));

        assert_eq!(plan.waiting, Some((waiting.id, WaitingAction::DialNow)));
        assert_eq!(plan.next, None);
    }

    #[test]
    fn a_missed_call_is_not_made_up_in_the_callees_quiet_hours() {
        let ten_to_nine = Recurrence::daily(NaiveTime::from_hms_opt(20, 50, 0).expect("time"));
        let rule = rule(ten_to_nine, CatchUp::DEFAULT, "2026-01-15T20:50:00Z");
        let waiting = Waiting { id: CallId::new(), due: utc("2026-01-15T20:50:00Z") };

        let plan = plan(&rule, Some(waiting), utc("2026-01-15T21:10:00Z"), settings("08:00-21:00"));

        assert!(matches!(&plan.waiting, Some((_, WaitingAction::Miss(reason))) if reason.contains("quiet hours")));
        assert_eq!(plan.next, Some(call("2026-01-16T20:50:00Z", "2026-01-16T20:50:00Z")));
    }

    #[test]
    fn a_waiting_call_missed_under_skip_is_dropped_for_the_next_occurrence() {
        let rule = rule(daily(10), CatchUp::Skip, "2026-01-15T10:00:00Z");
        let waiting = Waiting { id: CallId::new(), due: utc("2026-01-15T10:00:00Z") };

        let plan = plan(&rule, Some(waiting), utc("2026-01-15T10:45:00Z"), settings("off"));

        assert!(
            matches!(&plan.waiting, Some((id, WaitingAction::Miss(reason))) if *id == waiting.id && reason.contains("skips"))
        );
        assert_eq!(plan.next, Some(call("2026-01-16T10:00:00Z", "2026-01-16T10:00:00Z")));
    }

    #[test]
    fn a_call_late_by_less_than_the_grace_period_is_not_missed_even_under_skip() {
        let rule = rule(daily(10), CatchUp::Skip, "2026-01-15T09:00:00Z");

        let plan = plan(&rule, None, utc("2026-01-15T10:05:00Z"), settings("off"));

        assert_eq!(plan.next, Some(call("2026-01-15T10:00:00Z", "2026-01-15T10:00:00Z")));
    }

    #[test]
    fn after_a_long_outage_only_the_latest_occurrence_within_the_window_is_made_up() {
        let hourly = Recurrence::cron("0 * * * *").expect("valid");
        let rule = rule(hourly, CatchUp::Once { within: Duration::minutes(45) }, "2026-01-15T09:00:00Z");

        let plan = plan(&rule, None, utc("2026-01-15T13:30:00Z"), settings("off"));

        let next = plan.next.expect("a call");
        assert_eq!((next.occurrence.instant(), next.due), (utc("2026-01-15T13:00:00Z"), utc("2026-01-15T13:30:00Z")));
        assert!(next.note.is_some_and(|n| n.contains("made up")));
        let note = plan.note.expect("a note");
        assert!(note.contains("skipped the calls due from Thu 15 Jan 10:00 GMT to Thu 15 Jan 12:00 GMT"), "{note}");
        assert_eq!(plan.cursor, Some(utc("2026-01-15T13:30:00Z")));
    }

    #[test]
    fn after_an_outage_longer_than_the_window_nothing_is_made_up() {
        let rule = rule(daily(10), CatchUp::DEFAULT, "2026-01-14T10:00:00Z");

        let plan = plan(&rule, None, utc("2026-01-15T12:00:00Z"), settings("off"));

        assert_eq!(plan.next, Some(call("2026-01-16T10:00:00Z", "2026-01-16T10:00:00Z")));
        assert!(plan.note.is_some_and(|n| n.contains("skipped the call due at Thu 15 Jan 10:00")));
    }

    #[test]
    fn a_late_waiting_call_overtaken_by_a_later_occurrence_is_dropped_for_it() {
        let hourly = Recurrence::cron("0 * * * *").expect("valid");
        let rule = rule(hourly, CatchUp::DEFAULT, "2026-01-15T10:00:00Z");
        let waiting = Waiting { id: CallId::new(), due: utc("2026-01-15T10:00:00Z") };

        let plan = plan(&rule, Some(waiting), utc("2026-01-15T11:20:00Z"), settings("off"));

        assert!(matches!(&plan.waiting, Some((_, WaitingAction::Miss(_)))));
        let next = plan.next.expect("a call");
        assert_eq!((next.occurrence.instant(), next.due), (utc("2026-01-15T11:00:00Z"), utc("2026-01-15T11:20:00Z")));
    }

    #[test]
    fn an_occurrence_in_quiet_hours_is_moved_to_their_end_and_absorbs_the_ones_it_overtakes() {
        let hourly = Recurrence::cron("0 * * * *").expect("valid");
        let rule = rule(hourly, CatchUp::DEFAULT, "2026-01-15T02:30:00Z");

        let plan = plan(&rule, None, utc("2026-01-15T02:30:00Z"), settings("08:00-21:00"));

        let next = plan.next.expect("a call");
        assert_eq!((next.occurrence.instant(), next.due), (utc("2026-01-15T03:00:00Z"), utc("2026-01-15T08:00:00Z")));
        assert!(next.note.is_some_and(|n| n.contains("quiet hours")));
        assert_eq!(plan.cursor, Some(utc("2026-01-15T08:00:00Z")));
    }
}

//! The rule materialiser over a real SQLite file, driven with chosen instants: the occurrences it
//! makes across the 2026 clock changes in New York and Dublin, what it makes up (or skips) after
//! the service was down, and two instances sharing one database making every occurrence once.

use crate::common;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use common::scheduler::{Scheduler, limited_scheduler, queue_settings, scheduler};
use dialajoke::app::queue::StepOutcome;
use dialajoke::domain::limits::Limits;
use dialajoke::domain::{Call, CallId, CallStatus, HistoryEntry, PhoneNumber, Timezone};
use dialajoke::domain::{CatchUp, NewRule, Recurrence, RuleId};
use dialajoke::store::{CallPatch, DialLimits};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
}

fn daily(hour: u32, minute: u32) -> Recurrence {
    Recurrence::daily(NaiveTime::from_hms_opt(hour, minute, 0).expect("time"))
}

async fn add_rule(f: &Scheduler, recurrence: Recurrence, zone: &str, catch_up: CatchUp, created: &str) -> RuleId {
    let rule = NewRule {
        id: RuleId::new(),
        to: PhoneNumber::parse("+353 1 555 0100").expect("valid"),
        timezone: Timezone::parse(zone).expect("zone"),
        recurrence,
        catch_up,
    };
    f.store.insert_rule(&rule, at(created)).await.expect("stored").id
}

/// The rule's waiting call.
async fn waiting(f: &Scheduler, rule: RuleId) -> Call {
    let rule = f.store.get_rule(rule).await.expect("read").expect("rule");
    let (id, _) = rule.next_call.expect("a waiting call");
    f.call(id).await
}

/// Ends a call as if it had been dialled and answered.
async fn ring(f: &Scheduler, id: CallId) {
    let patch = CallPatch::default();
    for (from, to) in [(CallStatus::Scheduled, CallStatus::Dialing), (CallStatus::Dialing, CallStatus::Completed)] {
        let entry = HistoryEntry::now(to.as_str(), None);
        assert!(f.store.change_status(id, from, to, &patch, &entry).await.expect("status"), "{from} → {to}");
    }
}

/// The first `count` occurrences the materialiser makes for `rule` from `from` on, each call
/// rung at its due time before the next pass.
async fn occurrences(f: &Scheduler, rule: RuleId, from: &str, count: usize) -> Vec<DateTime<Utc>> {
    let mut now = at(from);
    let mut made = Vec::new();
    for _ in 0..count {
        f.materialiser.pass(now).await.expect("pass");
        let call = waiting(f, rule).await;
        made.push(call.occurrence_at.expect("an occurrence"));
        assert_eq!(call.due_at.instant(), made[made.len() - 1], "due at its occurrence");
        now = call.due_at.instant();
        ring(f, call.id).await;
    }
    made
}

async fn rule_calls(f: &Scheduler, rule: RuleId) -> Vec<Call> {
    let query = dialajoke::store::ListQuery { status: None, limit: 1000, offset: 0 };
    f.store.list_calls(&query).await.expect("list").into_iter().filter(|call| call.rule == Some(rule)).collect()
}

#[tokio::test]
async fn a_daily_half_past_two_in_new_york_rings_at_three_on_the_day_the_clocks_skip_it() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let rule = add_rule(&f, daily(2, 30), "America/New_York", CatchUp::DEFAULT, "2026-03-06T12:00:00Z").await;

    let made = occurrences(&f, rule, "2026-03-06T12:00:00Z", 3).await;

    // 02:30 EST, then 03:00 EDT (the end of the 2026-03-08 gap), then 02:30 EDT.
    assert_eq!(made, [at("2026-03-07T07:30:00Z"), at("2026-03-08T07:00:00Z"), at("2026-03-09T06:30:00Z")]);
}

#[tokio::test]
async fn a_daily_half_past_one_in_new_york_rings_once_on_the_day_it_happens_twice() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let rule = add_rule(&f, daily(1, 30), "America/New_York", CatchUp::DEFAULT, "2026-10-30T12:00:00Z").await;

    let made = occurrences(&f, rule, "2026-10-30T12:00:00Z", 3).await;

    // 01:30 EDT, then on 2026-11-01 only the first 01:30 (EDT), then 01:30 EST.
    assert_eq!(made, [at("2026-10-31T05:30:00Z"), at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z")]);
}

#[tokio::test]
async fn a_daily_half_past_one_in_dublin_rings_at_two_on_the_day_the_clocks_skip_it() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let rule = add_rule(&f, daily(1, 30), "Europe/Dublin", CatchUp::DEFAULT, "2026-03-27T12:00:00Z").await;

    let made = occurrences(&f, rule, "2026-03-27T12:00:00Z", 3).await;

    // 01:30 GMT, then 02:00 IST (the end of the 2026-03-29 gap), then 01:30 IST.
    assert_eq!(made, [at("2026-03-28T01:30:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z")]);
}

#[tokio::test]
async fn an_hourly_rule_in_dublin_rings_once_for_the_hour_the_clocks_repeat() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let hourly = Recurrence::cron("0 * * * *").expect("valid");
    let rule = add_rule(&f, hourly, "Europe/Dublin", CatchUp::DEFAULT, "2026-10-24T22:30:00Z").await;

    let made = occurrences(&f, rule, "2026-10-24T22:30:00Z", 4).await;

    // 00:00 IST, 01:00 IST, then 02:00 GMT: the second 01:00 (GMT, 01:00 UTC) does not ring.
    assert_eq!(
        made,
        ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"].map(at)
    );
}

#[tokio::test]
async fn a_call_missed_while_the_service_was_down_is_made_up_once_within_the_window() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let rule = add_rule(&f, daily(10, 0), "Europe/Dublin", CatchUp::DEFAULT, "2026-01-14T12:00:00Z").await;
    f.materialiser.pass(at("2026-01-14T12:00:00Z")).await.expect("pass");
    let missed = waiting(&f, rule).await;

    // The service was down from before 10:00 until 10:40; at start-up its pass runs before the queue.
    let restarted = f.another_instance(queue_settings(100, DialLimits::unlimited())).await;
    restarted.materialiser.pass(at("2026-01-15T10:40:00Z")).await.expect("pass");
    let outcome = restarted.step(at("2026-01-15T10:40:01Z")).await.expect("step");

    let made_up = f.call(missed.id).await;
    assert_eq!(made_up.due_at.instant(), at("2026-01-15T10:40:00Z"));
    assert!(f.store.history(missed.id).await.expect("history").iter().any(|entry| entry.kind == "caught_up"));
    assert_eq!(outcome, StepOutcome::Dispatched(vec![missed.id]));
    f.materialiser.pass(at("2026-01-15T10:40:15Z")).await.expect("pass");
    assert_eq!(waiting(&f, rule).await.occurrence_at, Some(at("2026-01-16T10:00:00Z")));
    assert_eq!(rule_calls(&f, rule).await.len(), 2);
}

#[tokio::test]
async fn under_skip_a_call_missed_while_the_service_was_down_is_dropped_for_the_next_one() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let rule = add_rule(&f, daily(10, 0), "Europe/Dublin", CatchUp::Skip, "2026-01-14T12:00:00Z").await;
    f.materialiser.pass(at("2026-01-14T12:00:00Z")).await.expect("pass");
    let missed = waiting(&f, rule).await;

    let restarted = f.another_instance(queue_settings(100, DialLimits::unlimited())).await;
    restarted.materialiser.pass(at("2026-01-15T10:40:00Z")).await.expect("pass");
    let outcome = restarted.step(at("2026-01-15T10:40:01Z")).await.expect("step");

    let dropped = f.call(missed.id).await;
    assert_eq!(dropped.status, CallStatus::Missed);
    assert!(dropped.last_error.is_some_and(|e| e.contains("skips missed calls")));
    assert_eq!(outcome, StepOutcome::Idle(Some(at("2026-01-16T10:00:00Z"))));
    assert_eq!(waiting(&f, rule).await.occurrence_at, Some(at("2026-01-16T10:00:00Z")));
}

#[tokio::test]
async fn after_a_long_outage_only_the_latest_missed_occurrence_is_made_up() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let hourly = Recurrence::cron("0 * * * *").expect("valid");
    let rule =
        add_rule(&f, hourly, "Europe/Dublin", CatchUp::Once { within: Duration::minutes(45) }, "2026-01-15T09:30:00Z")
            .await;
    f.materialiser.pass(at("2026-01-15T09:30:00Z")).await.expect("pass");
    let first = waiting(&f, rule).await;

    // Down from 09:50 until 13:30: 10:00, 11:00, 12:00 and 13:00 all passed.
    f.materialiser.pass(at("2026-01-15T13:30:00Z")).await.expect("pass");

    assert_eq!(f.call(first.id).await.status, CallStatus::Missed);
    let made_up = waiting(&f, rule).await;
    assert_eq!(made_up.occurrence_at, Some(at("2026-01-15T13:00:00Z")));
    assert_eq!(made_up.due_at.instant(), at("2026-01-15T13:30:00Z"));
    let note = f.store.get_rule(rule).await.expect("read").expect("rule").note.expect("a note");
    assert!(note.contains("from Thu 15 Jan 10:00 GMT to Thu 15 Jan 12:00 GMT"), "{note}");
    assert_eq!(rule_calls(&f, rule).await.len(), 2);
}

#[tokio::test]
async fn two_instances_sharing_a_database_make_each_occurrence_once() {
    let a = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let b = a.another_instance(queue_settings(100, DialLimits::unlimited())).await;
    let mut rules = Vec::new();
    for minute in 0..20 {
        let recurrence = Recurrence::cron(&format!("{minute} * * * *")).expect("valid");
        rules.push(add_rule(&a, recurrence, "Europe/Dublin", CatchUp::DEFAULT, "2026-01-15T12:00:00Z").await);
    }

    for hour in 0..3 {
        let now = at("2026-01-15T12:00:00Z") + Duration::hours(hour);
        let (made_a, made_b) = tokio::join!(a.materialiser.pass(now), b.materialiser.pass(now));
        assert_eq!(made_a.expect("pass") + made_b.expect("pass"), rules.len(), "hour {hour}");
        for rule in &rules {
            ring(&a, waiting(&a, *rule).await.id).await;
        }
    }

    for rule in &rules {
        let calls = rule_calls(&a, *rule).await;
        let mut occurrences: Vec<_> = calls.iter().filter_map(|call| call.occurrence_at).collect();
        occurrences.sort();
        occurrences.dedup();
        assert_eq!((calls.len(), occurrences.len()), (3, 3), "{calls:#?}");
    }
}

#[tokio::test]
async fn a_clock_with_milliseconds_makes_one_call_per_occurrence_over_many_passes() {
    let f = scheduler(queue_settings(100, DialLimits::unlimited())).await;
    let rule = add_rule(&f, daily(10, 0), "Europe/Dublin", CatchUp::DEFAULT, "2026-01-15T09:59:30.123Z").await;
    f.materialiser.pass(at("2026-01-15T09:59:30.123Z")).await.expect("pass");
    let first = waiting(&f, rule).await;
    ring(&f, first.id).await;

    // Housekeeping passes every few seconds after the call has left `scheduled`, each at an
    // instant with its own sub-second part, all within the occurrence's minute and grace period.
    for millis in [250, 4_321, 9_876, 15_001, 30_999, 59_500, 120_777, 299_004] {
        f.materialiser.pass(at("2026-01-15T10:00:00Z") + Duration::milliseconds(millis)).await.expect("pass");
    }

    let calls = rule_calls(&f, rule).await;
    let mut occurrences: Vec<_> = calls.iter().filter_map(|call| call.occurrence_at).collect();
    occurrences.sort();
    assert_eq!(occurrences, [at("2026-01-15T10:00:00Z"), at("2026-01-16T10:00:00Z")], "{calls:#?}");
}

#[tokio::test]
async fn an_occurrence_that_would_break_a_limit_is_skipped_with_the_reason_and_the_next_one_made() {
    let limits = Limits { per_number_hour: 1, ..Limits::NONE };
    let f = limited_scheduler(queue_settings(100, DialLimits::unlimited()), limits).await;
    f.clock.set(at("2026-01-14T12:00:00Z"));
    f.add_call("+353 1 555 0100", "Europe/Dublin", at("2026-01-15T10:20:00Z")).await;
    let rule = add_rule(&f, daily(10, 0), "Europe/Dublin", CatchUp::DEFAULT, "2026-01-14T12:00:00Z").await;

    f.materialiser.pass(at("2026-01-14T12:00:00Z")).await.expect("pass");
    f.materialiser.pass(at("2026-01-14T12:00:15Z")).await.expect("the next housekeeping pass");

    let stored = f.store.get_rule(rule).await.expect("read").expect("rule");
    let note = stored.note.expect("the rule says why");
    assert!(
        note.contains("skipped the call due at Thu 15 Jan 10:00 GMT: 1 call to this number already rings"),
        "{note}"
    );
    let next = waiting(&f, rule).await;
    assert_eq!(next.occurrence_at, Some(at("2026-01-16T10:00:00Z")), "the next occurrence is made");
    assert_eq!(rule_calls(&f, rule).await.len(), 1);
}

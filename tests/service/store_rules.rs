//! The store's contract for recurring rules, retries and quiet-hour moves, one suite for both
//! backends (`sqlite::…` and `postgres::…`): an occurrence gets one call however many instances
//! step its rule at once, a retry is stored once, a call is only moved while it still waits at
//! the time it was read with, pausing and deleting a rule cancel what it has waiting, and a group
//! of webhook events is recorded in one go, each once.

use crate::common;

use chrono::{DateTime, NaiveTime, Utc};
use common::backends::{TestStore, on_both_backends};
use dialajoke::domain::limits::Limits;
use dialajoke::domain::{Call, CallId, CallStatus, DueAt, HistoryEntry, PhoneNumber, Schedule, Timezone};
use dialajoke::domain::{CatchUp, NewRule, Occurrence, Recurrence, Rule, RuleId, RuleStatus};
use dialajoke::store::{CallPatch, InboxEvent, ListQuery, NewCall, RuleStep, Stepped, Store, StoreError};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
}

/// A daily 10:00 rule to an Irish number, created at `created`.
async fn add_rule(store: &dyn Store, created: &str) -> Rule {
    let rule = NewRule {
        id: RuleId::new(),
        to: PhoneNumber::parse("+353 1 555 0100").expect("valid"),
        timezone: Timezone::parse("Europe/Dublin").expect("zone"),
        recurrence: Recurrence::daily(NaiveTime::from_hms_opt(10, 0, 0).expect("time")),
        catch_up: CatchUp::DEFAULT,
    };
    store.insert_rule(&rule, at(created)).await.expect("stored")
}

/// A fresh call for `rule`, due at `due`.
fn call_for(rule: &Rule, due: DateTime<Utc>) -> NewCall {
    let schedule = Schedule { to: rule.to.clone(), due_at: DueAt::planned(due), timezone: rule.timezone, note: None };
    NewCall { id: CallId::new(), schedule, idempotency: None }
}

/// The step that moves `rule`'s cursor from `from` past `occurrence` and stores its call.
fn step_to(rule: &Rule, from: DateTime<Utc>, occurrence: DateTime<Utc>) -> RuleStep {
    RuleStep {
        rule: rule.id,
        cursor_from: from,
        cursor_to: occurrence,
        note: None,
        occurrence: Some((call_for(rule, occurrence), Occurrence::at(occurrence))),
    }
}

async fn rule_calls(store: &dyn Store, rule: RuleId) -> Vec<Call> {
    let query = ListQuery { status: None, limit: 1000, offset: 0 };
    store.list_calls(&query).await.expect("list").into_iter().filter(|call| call.rule == Some(rule)).collect()
}

async fn read_rule(store: &dyn Store, id: RuleId) -> Rule {
    store.get_rule(id).await.expect("read").expect("rule exists")
}

async fn read_call(store: &dyn Store, id: CallId) -> Call {
    store.get_call(id).await.expect("read").expect("call exists")
}

on_both_backends!(
    a_rule_reads_back_as_stored_with_its_waiting_call,
    an_occurrence_gets_one_call_when_two_instances_step_its_rule_at_once,
    an_occurrence_that_already_has_its_call_is_never_stored_twice,
    a_retry_is_stored_once_however_often_it_is_asked_for,
    a_call_is_moved_only_while_it_still_waits_at_the_time_it_was_read_with,
    pausing_a_rule_cancels_its_waiting_call_and_gives_its_occurrence_back,
    deleting_a_rule_cancels_its_waiting_call_and_keeps_its_history,
    the_materialiser_is_given_active_rules_with_no_call_waiting_or_a_late_one,
    due_calls_are_the_scheduled_ones_due_by_then_earliest_first,
    a_group_of_events_is_recorded_in_one_go_each_once,
    a_rule_step_a_retry_or_a_move_that_would_break_a_limit_changes_nothing,
);

async fn a_rule_reads_back_as_stored_with_its_waiting_call(t: TestStore) {
    let store = t.store.as_ref();
    let first = add_rule(store, "2026-01-14T12:00:00Z").await;
    let second = add_rule(store, "2026-01-14T12:05:00Z").await;
    let occurrence = at("2026-01-15T10:00:00Z");
    let step = step_to(&first, first.cursor, occurrence);

    store.step_rule(&step).await.expect("step");

    let stored = read_rule(store, first.id).await;
    let (call, _) = step.occurrence.as_ref().expect("an occurrence");
    assert_eq!((stored.status, stored.cursor), (RuleStatus::Active, occurrence));
    assert_eq!(stored.next_call, Some((call.id, DueAt::from_stored(occurrence))));
    let made = read_call(store, call.id).await;
    assert_eq!((made.rule, made.occurrence_at, made.retry), (Some(first.id), Some(occurrence), None));
    let listed: Vec<RuleId> = store.list_rules().await.expect("list").iter().map(|rule| rule.id).collect();
    assert_eq!(listed, vec![first.id, second.id]);
}

async fn an_occurrence_gets_one_call_when_two_instances_step_its_rule_at_once(t: TestStore) {
    let other = t.another_instance().await;
    let occurrence = at("2026-01-15T10:00:00Z");
    for round in 0..10 {
        let rule = add_rule(t.store.as_ref(), "2026-01-14T12:00:00Z").await;
        // Each instance read the same cursor and made its own call for the same occurrence.
        let (here, there) = (step_to(&rule, rule.cursor, occurrence), step_to(&rule, rule.cursor, occurrence));

        let (a, b) = tokio::join!(t.store.step_rule(&here), other.step_rule(&there));

        let mut outcomes = [a.expect("step here"), b.expect("step there")];
        outcomes.sort_by_key(|outcome| *outcome == Stepped::Stale);
        assert_eq!(outcomes, [Stepped::Moved { created: true }, Stepped::Stale], "round {round}");
        assert_eq!(rule_calls(t.store.as_ref(), rule.id).await.len(), 1, "round {round}");
    }
}

async fn an_occurrence_that_already_has_its_call_is_never_stored_twice(t: TestStore) {
    let store = t.store.as_ref();
    let rule = add_rule(store, "2026-01-14T12:00:00Z").await;
    let occurrence = at("2026-01-15T10:00:00Z");
    store.step_rule(&step_to(&rule, rule.cursor, occurrence)).await.expect("first step");
    let moved = read_rule(store, rule.id).await;

    let with_a_stale_cursor = store.step_rule(&step_to(&rule, rule.cursor, occurrence)).await.expect("step");
    let with_the_current_cursor = store.step_rule(&step_to(&rule, moved.cursor, occurrence)).await.expect("step");

    assert_eq!(with_a_stale_cursor, Stepped::Stale);
    assert_eq!(with_the_current_cursor, Stepped::Moved { created: false });
    assert_eq!(rule_calls(store, rule.id).await.len(), 1);
}

async fn a_retry_is_stored_once_however_often_it_is_asked_for(t: TestStore) {
    let store = t.store.as_ref();
    let rule = add_rule(store, "2026-01-14T12:00:00Z").await;
    let first = t.add_call(t.now().await).await;
    let due = t.now().await + chrono::Duration::minutes(10);
    let (retry, again) = (call_for(&rule, due), call_for(&rule, due));

    let stored = store.insert_retry(&retry, first, 1, Some(rule.id)).await.expect("retry");
    let repeated = store.insert_retry(&again, first, 1, Some(rule.id)).await.expect("retry again");
    let next = store.insert_retry(&call_for(&rule, due), first, 2, Some(rule.id)).await.expect("second retry");

    assert_eq!((stored, repeated, next), (true, false, true));
    assert!(store.get_call(again.id).await.expect("read").is_none());
    let made = read_call(store, retry.id).await;
    assert_eq!((made.status, made.rule, made.occurrence_at), (CallStatus::Scheduled, Some(rule.id), None));
    assert_eq!(made.retry, Some((first, 1)));
}

async fn a_call_is_moved_only_while_it_still_waits_at_the_time_it_was_read_with(t: TestStore) {
    let store = t.store.as_ref();
    let due = t.now().await + chrono::Duration::minutes(5);
    let id = t.add_call(due).await;
    let read = read_call(store, id).await.due_at;
    let (morning, later) =
        (DueAt::planned(due + chrono::Duration::hours(8)), DueAt::planned(due + chrono::Duration::hours(9)));
    let entry = HistoryEntry::now("deferred", Some("quiet hours".into()));

    let from_a_wrong_time = store.reschedule(id, later, morning, &entry).await.expect("reschedule");
    let moved = store.reschedule(id, read, morning, &entry).await.expect("reschedule");
    let moved_again_from_the_old_time = store.reschedule(id, read, later, &entry).await.expect("reschedule");

    assert_eq!((from_a_wrong_time, moved, moved_again_from_the_old_time), (false, true, false));
    let call = read_call(store, id).await;
    assert_eq!(call.due_at.instant().timestamp_millis(), morning.instant().timestamp_millis());
    let history = store.history(id).await.expect("history");
    assert_eq!(history.iter().filter(|entry| entry.kind == "deferred").count(), 1, "{history:?}");

    let entry = HistoryEntry::now("cancelled", None);
    store
        .change_status(id, CallStatus::Scheduled, CallStatus::Cancelled, &CallPatch::default(), &entry)
        .await
        .expect("cancel");
    let moved_once_cancelled = store.reschedule(id, call.due_at, later, &entry).await.expect("reschedule");
    assert!(!moved_once_cancelled);
    assert_eq!(read_call(store, id).await.status, CallStatus::Cancelled);
}

async fn pausing_a_rule_cancels_its_waiting_call_and_gives_its_occurrence_back(t: TestStore) {
    let store = t.store.as_ref();
    let rule = add_rule(store, "2026-01-14T12:00:00Z").await;
    let occurrence = at("2026-01-15T10:00:00Z");
    let step = step_to(&rule, rule.cursor, occurrence);
    store.step_rule(&step).await.expect("step");
    let (waiting, _) = step.occurrence.as_ref().expect("an occurrence");

    let paused = store.set_rule_status(rule.id, RuleStatus::Paused, at("2026-01-14T13:00:00Z")).await.expect("pause");

    let paused = paused.expect("the rule exists");
    assert_eq!((paused.status, paused.next_call), (RuleStatus::Paused, None));
    let cancelled = read_call(store, waiting.id).await;
    assert_eq!((cancelled.status, cancelled.occurrence_at), (CallStatus::Cancelled, None));
    assert_eq!(store.step_rule(&step_to(&paused, paused.cursor, occurrence)).await.expect("step"), Stepped::Stale);

    let resumed_at = at("2026-01-14T14:00:00Z");
    let resumed = store.set_rule_status(rule.id, RuleStatus::Active, resumed_at).await.expect("resume");
    let resumed = resumed.expect("the rule exists");
    assert_eq!((resumed.status, resumed.cursor), (RuleStatus::Active, resumed_at));
    let again = store.step_rule(&step_to(&resumed, resumed.cursor, occurrence)).await.expect("step");
    assert_eq!(again, Stepped::Moved { created: true });
    let missing = store.set_rule_status(RuleId::new(), RuleStatus::Paused, resumed_at).await.expect("pause");
    assert!(missing.is_none());
}

async fn deleting_a_rule_cancels_its_waiting_call_and_keeps_its_history(t: TestStore) {
    let store = t.store.as_ref();
    let rule = add_rule(store, "2026-01-14T12:00:00Z").await;
    let step = step_to(&rule, rule.cursor, at("2026-01-15T10:00:00Z"));
    store.step_rule(&step).await.expect("step");
    let (waiting, _) = step.occurrence.as_ref().expect("an occurrence");

    let deleted = store.delete_rule(rule.id).await.expect("delete");
    let deleted_again = store.delete_rule(rule.id).await.expect("delete again");

    assert_eq!((deleted, deleted_again), (true, false));
    assert!(store.get_rule(rule.id).await.expect("read").is_none());
    assert_eq!(read_call(store, waiting.id).await.status, CallStatus::Cancelled);
    let kinds: Vec<String> = store.history(waiting.id).await.expect("history").into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["scheduled", "cancelled"]);
}

async fn the_materialiser_is_given_active_rules_with_no_call_waiting_or_a_late_one(t: TestStore) {
    let store = t.store.as_ref();
    let without_a_call = add_rule(store, "2026-01-14T12:00:00Z").await;
    let with_a_late_call = add_rule(store, "2026-01-14T12:01:00Z").await;
    let with_a_timely_call = add_rule(store, "2026-01-14T12:02:00Z").await;
    let paused = add_rule(store, "2026-01-14T12:03:00Z").await;
    let late = step_to(&with_a_late_call, with_a_late_call.cursor, at("2026-01-15T10:00:00Z"));
    let timely = step_to(&with_a_timely_call, with_a_timely_call.cursor, at("2026-01-16T10:00:00Z"));
    store.step_rule(&late).await.expect("step");
    store.step_rule(&timely).await.expect("step");
    store.set_rule_status(paused.id, RuleStatus::Paused, at("2026-01-14T12:04:00Z")).await.expect("pause");

    let needing = store.rules_to_materialise(at("2026-01-15T11:00:00Z")).await.expect("rules");

    let mut ids: Vec<RuleId> = needing.iter().map(|rule| rule.id).collect();
    let mut expected = vec![without_a_call.id, with_a_late_call.id];
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
}

async fn due_calls_are_the_scheduled_ones_due_by_then_earliest_first(t: TestStore) {
    let store = t.store.as_ref();
    let now = t.now().await;
    let later = t.add_call(now - chrono::Duration::seconds(10)).await;
    let earlier = t.add_call(now - chrono::Duration::seconds(20)).await;
    let cancelled = t.add_call(now - chrono::Duration::seconds(30)).await;
    t.add_call(now + chrono::Duration::minutes(5)).await;
    let entry = HistoryEntry::now("cancelled", None);
    store
        .change_status(cancelled, CallStatus::Scheduled, CallStatus::Cancelled, &CallPatch::default(), &entry)
        .await
        .expect("cancel");

    let due: Vec<CallId> = store.due_calls(now, 10).await.expect("due").iter().map(|call| call.id).collect();
    let first: Vec<CallId> = store.due_calls(now, 1).await.expect("due").iter().map(|call| call.id).collect();

    assert_eq!(due, vec![earlier, later]);
    assert_eq!(first, vec![earlier]);
}

async fn a_group_of_events_is_recorded_in_one_go_each_once(t: TestStore) {
    let store = t.store.as_ref();
    let event = |id: &str| InboxEvent {
        event_id: id.into(),
        call_key: "call-1".into(),
        event_type: "call.hangup".into(),
        body: id.as_bytes().to_vec(),
        received_at: Utc::now(),
    };
    assert!(store.inbox_insert(&event("e-0")).await.expect("insert"));

    let group = [event("e-1"), event("e-0"), event("e-2"), event("e-1")];
    let fresh = store.inbox_insert_group(&group).await.expect("group");

    assert_eq!(fresh, vec![true, false, true, false]);
    let bodies: Vec<Vec<u8>> =
        store.inbox_pending("call-1").await.expect("pending").into_iter().map(|event| event.body).collect();
    assert_eq!(bodies, vec![b"e-0".to_vec(), b"e-1".to_vec(), b"e-2".to_vec()]);
}

async fn a_rule_step_a_retry_or_a_move_that_would_break_a_limit_changes_nothing(t: TestStore) {
    let t = t.with_limits(Limits { per_number_hour: 1, ..Limits::NONE }).await;
    let store = t.store.as_ref();
    let rule = add_rule(store, "2026-01-14T12:00:00Z").await;
    let occurrence = at("2026-01-15T10:00:00Z");
    let elsewhere = call_for(&rule, occurrence + chrono::Duration::hours(3));
    store.insert_call(&call_for(&rule, occurrence + chrono::Duration::minutes(30))).await.expect("a call near it");
    store.insert_call(&elsewhere).await.expect("a call hours away");

    let step = store.step_rule(&step_to(&rule, rule.cursor, occurrence)).await;
    let retry = call_for(&rule, occurrence + chrono::Duration::minutes(20));
    let retried = store.insert_retry(&retry, elsewhere.id, 1, Some(rule.id)).await;
    let read = read_call(store, elsewhere.id).await.due_at;
    let moved =
        store.reschedule(elsewhere.id, read, DueAt::planned(occurrence), &HistoryEntry::now("deferred", None)).await;

    for (what, result) in [("step", step.map(|_| ())), ("retry", retried.map(|_| ())), ("move", moved.map(|_| ()))] {
        assert!(matches!(result, Err(StoreError::LimitReached(_))), "{what}: {result:?}");
    }
    assert_eq!(read_rule(store, rule.id).await.cursor, rule.cursor, "the cursor stays");
    assert!(store.get_call(retry.id).await.expect("read").is_none());
    assert_eq!(read_call(store, elsewhere.id).await.due_at, read, "the call stays where it was");
    let all = store.list_calls(&ListQuery { status: None, limit: 10, offset: 0 }).await.expect("list");
    assert_eq!(all.len(), 2, "only the two calls stored first");
}

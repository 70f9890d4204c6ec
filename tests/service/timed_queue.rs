//! The timed queue over a real store of each backend, driven step by step (no sleeping): what is
//! due by the store's clock is claimed once, what is not due waits, cancelled and overdue calls
//! are never dialed, and the dial limits hold dials back. On SQLite, with the store's clock set to
//! chosen instants: a call that falls due in its callee's quiet hours is moved to the morning or
//! marked, never dialled.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::backends::{TestStore, on_both_backends};
use common::scheduler::{Recorder, Scheduler, limited_scheduler, queue_settings as settings, scheduler};
use dialajoke::app::queue::{QueueSettings, StepOutcome, TimedQueue};
use dialajoke::domain::hours::QuietAction;
use dialajoke::domain::limits::Limits;
use dialajoke::domain::{CallId, CallStatus, DueAt};
use dialajoke::store::DialLimits;

struct Fixture {
    t: TestStore,
    queue: TimedQueue,
}

fn fixture(t: TestStore, settings: QueueSettings) -> Fixture {
    let queue = TimedQueue::new(Arc::clone(&t.store), Arc::new(Recorder::default()), settings);
    Fixture { t, queue }
}

impl Fixture {
    /// Schedules a call due `offset` from now by the store's clock, and tells the queue.
    async fn add(&self, offset: chrono::Duration) -> CallId {
        let due = self.t.now().await + offset;
        let id = self.t.add_call(due).await;
        self.queue.scheduled(id, DueAt::from_stored(due));
        id
    }

    async fn status(&self, id: CallId) -> CallStatus {
        self.t.store.get_call(id).await.expect("read").expect("exists").status
    }
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

on_both_backends!(
    nothing_is_dispatched_before_its_time_and_the_queue_says_when_next,
    a_due_call_is_claimed_once_even_if_stepped_twice,
    a_call_scheduled_ahead_of_the_head_is_seen_at_once,
    calls_beyond_the_in_memory_window_are_loaded_when_the_window_drains,
    a_cancelled_call_is_never_dispatched,
    a_call_overdue_beyond_the_grace_period_is_marked_missed_not_dialed,
    pacing_holds_back_dials_beyond_the_limit,
    the_limit_of_calls_at_once_holds_back_dials,
);

async fn nothing_is_dispatched_before_its_time_and_the_queue_says_when_next(t: TestStore) {
    let f = fixture(t, settings(100, DialLimits::unlimited()));
    let due = f.t.now().await + secs(30);
    let id = f.t.add_call(due).await;
    f.queue.scheduled(id, DueAt::from_stored(due));

    let outcome = f.queue.step().await.expect("step");

    let StepOutcome::Idle(Some(next)) = outcome else { panic!("expected idle, got {outcome:?}") };
    assert_eq!(next.timestamp_millis(), due.timestamp_millis());
}

async fn a_due_call_is_claimed_once_even_if_stepped_twice(t: TestStore) {
    let f = fixture(t, settings(100, DialLimits::unlimited()));
    let id = f.add(secs(-1)).await;

    let first = f.queue.step().await.expect("step");
    let second = f.queue.step().await.expect("step");

    assert_eq!(first, StepOutcome::Dispatched(vec![id]));
    assert!(matches!(second, StepOutcome::Idle(None)), "{second:?}");
    assert_eq!(f.status(id).await, CallStatus::Dialing);
}

async fn a_call_scheduled_ahead_of_the_head_is_seen_at_once(t: TestStore) {
    let f = fixture(t, settings(100, DialLimits::unlimited()));
    f.add(secs(60)).await;
    f.queue.step().await.expect("initial load");

    let early = f.add(secs(-1)).await;
    let outcome = f.queue.step().await.expect("step");

    assert_eq!(outcome, StepOutcome::Dispatched(vec![early]));
}

async fn calls_beyond_the_in_memory_window_are_loaded_when_the_window_drains(t: TestStore) {
    let f = fixture(t, settings(2, DialLimits::unlimited()));
    let ids = [f.add(secs(-3)).await, f.add(secs(-2)).await, f.add(secs(-1)).await];

    let mut dispatched = Vec::new();
    for _ in 0..4 {
        if let StepOutcome::Dispatched(batch) = f.queue.step().await.expect("step") {
            dispatched.extend(batch);
        }
    }

    dispatched.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(dispatched, expected);
}

async fn a_cancelled_call_is_never_dispatched(t: TestStore) {
    let f = fixture(t, settings(100, DialLimits::unlimited()));
    let id = f.add(secs(-1)).await;
    let entry = dialajoke::domain::HistoryEntry::now("cancelled", None);
    let patch = dialajoke::store::CallPatch::default();
    f.t.store.change_status(id, CallStatus::Scheduled, CallStatus::Cancelled, &patch, &entry).await.expect("cancel");

    let outcome = f.queue.step().await.expect("step");

    assert_eq!(outcome, StepOutcome::Dispatched(vec![]));
    assert_eq!(f.status(id).await, CallStatus::Cancelled);
}

async fn a_call_overdue_beyond_the_grace_period_is_marked_missed_not_dialed(t: TestStore) {
    let f = fixture(t, settings(100, DialLimits::unlimited()));
    let id = f.add(chrono::Duration::minutes(-30)).await;

    f.queue.step().await.expect("step");

    assert_eq!(f.status(id).await, CallStatus::Missed);
}

async fn pacing_holds_back_dials_beyond_the_limit(t: TestStore) {
    let limits = DialLimits { rate: Some((3, Duration::from_secs(60))), max_active: None };
    let f = fixture(t, settings(100, limits));
    for offset in 1..=5 {
        f.add(secs(-offset)).await;
    }

    let first = f.queue.step().await.expect("step");
    let second = f.queue.step().await.expect("step");

    let StepOutcome::Dispatched(batch) = first else { panic!("expected a dispatch, got {first:?}") };
    assert_eq!(batch.len(), 3);
    assert!(matches!(second, StepOutcome::Paced(_)), "{second:?}");
}

async fn the_limit_of_calls_at_once_holds_back_dials(t: TestStore) {
    let limits = DialLimits { rate: None, max_active: Some(2) };
    let f = fixture(t, settings(100, limits));
    for offset in 1..=3 {
        f.add(secs(-offset)).await;
    }

    let first = f.queue.step().await.expect("step");
    let second = f.queue.step().await.expect("step");

    let StepOutcome::Dispatched(batch) = first else { panic!("expected a dispatch, got {first:?}") };
    assert_eq!(batch.len(), 2);
    assert_eq!(second, StepOutcome::Full);
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
}

/// Settings with calling hours 08:00–21:00 and `quiet` for calls outside them.
fn with_calling_hours(quiet: QuietAction) -> QueueSettings {
    QueueSettings {
        calling_hours: "08:00-21:00".parse().expect("hours"),
        quiet,
        ..settings(100, DialLimits::unlimited())
    }
}

#[tokio::test]
async fn a_call_falling_due_at_three_in_the_morning_is_moved_to_eight_and_dialled_then() {
    let f = scheduler(with_calling_hours(QuietAction::Defer)).await;
    // A bare instant to an Irish number is judged on Dublin's clock: GMT in January.
    let id = add_at(&f, at("2026-01-15T03:00:00Z")).await;

    let at_three = f.step(at("2026-01-15T03:00:01Z")).await.expect("step");

    assert_eq!(at_three, StepOutcome::Dispatched(vec![]));
    let held = f.call(id).await;
    assert_eq!((held.status, held.due_at.instant()), (CallStatus::Scheduled, at("2026-01-15T08:00:00Z")));
    let history = f.store.history(id).await.expect("history");
    assert!(history.iter().any(|entry| entry.kind == "deferred"), "{history:?}");
    assert!(matches!(f.step(at("2026-01-15T07:59:59Z")).await.expect("step"), StepOutcome::Idle(Some(_))));
    assert_eq!(f.step(at("2026-01-15T08:00:00Z")).await.expect("step"), StepOutcome::Dispatched(vec![id]));
}

#[tokio::test]
async fn a_call_falling_due_in_quiet_hours_is_marked_missed_when_so_configured() {
    let f = scheduler(with_calling_hours(QuietAction::Mark)).await;
    let id = add_at(&f, at("2026-01-15T21:00:00Z")).await;

    let outcome = f.step(at("2026-01-15T21:00:30Z")).await.expect("step");

    assert_eq!(outcome, StepOutcome::Dispatched(vec![]));
    let marked = f.call(id).await;
    assert_eq!(marked.status, CallStatus::Missed);
    assert!(marked.last_error.is_some_and(|e| e.contains("quiet hours")));
}

#[tokio::test]
async fn the_last_minute_before_quiet_hours_still_rings_and_the_first_does_not() {
    let f = scheduler(with_calling_hours(QuietAction::Defer)).await;
    let last = add_at(&f, at("2026-01-15T20:59:00Z")).await;
    let first_quiet = add_at(&f, at("2026-01-15T21:00:00Z")).await;

    let before = f.step(at("2026-01-15T20:59:30Z")).await.expect("step");
    let after = f.step(at("2026-01-15T21:00:00Z")).await.expect("step");

    assert_eq!(before, StepOutcome::Dispatched(vec![last]));
    assert_eq!(after, StepOutcome::Dispatched(vec![]));
    assert_eq!(f.call(first_quiet).await.due_at.instant(), at("2026-01-16T08:00:00Z"));
}

#[tokio::test]
async fn a_call_held_up_by_an_outage_until_night_is_checked_against_the_callees_own_clock() {
    let f = scheduler(with_calling_hours(QuietAction::Defer)).await;
    // Due 20:58 in New York (01:58 UTC, EST); the queue only gets to it at 21:05 there, still
    // within the grace period.
    let id = f.add_call("+1 201 555 0100", "America/New_York", at("2026-01-16T01:58:00Z")).await;

    f.step(at("2026-01-16T02:05:00Z")).await.expect("step");

    assert_eq!(f.call(id).await.due_at.instant(), at("2026-01-16T13:00:00Z"));
}

async fn add_at(f: &Scheduler, due: DateTime<Utc>) -> CallId {
    f.add_call("+353 1 234 5678", "UTC", due).await
}

#[tokio::test]
async fn a_call_deferred_into_a_morning_already_full_for_its_number_ends_missed_with_the_reason() {
    let limits = Limits { per_number_hour: 1, ..Limits::NONE };
    let f = limited_scheduler(with_calling_hours(QuietAction::Defer), limits).await;
    f.clock.set(at("2026-01-14T12:00:00Z"));
    let morning = add_at(&f, at("2026-01-15T08:10:00Z")).await;
    let night = add_at(&f, at("2026-01-15T03:00:00Z")).await;

    let outcome = f.step(at("2026-01-15T03:00:01Z")).await.expect("step");

    assert_eq!(outcome, StepOutcome::Dispatched(vec![]));
    let missed = f.call(night).await;
    assert_eq!(missed.status, CallStatus::Missed);
    let reason = missed.last_error.expect("the reason");
    assert!(reason.contains("not moved out of quiet hours: 1 call to this number already rings"), "{reason}");
    assert_eq!(f.call(morning).await.status, CallStatus::Scheduled);
}

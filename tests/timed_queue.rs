//! The timed queue over a real store of each backend, driven step by step (no sleeping): what is
//! due by the store's clock is claimed once, what is not due waits, cancelled and overdue calls
//! are never dialed, and the dial limits hold dials back.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::backends::{TestStore, on_both_backends};
use dialajoke::calls::{Call, CallId, CallStatus, DueAt};
use dialajoke::scheduler::{Dispatch, QueueSettings, StepOutcome, TimedQueue};
use dialajoke::store::{DialLimits, LeaseTerms};

/// Records what the queue hands over instead of dialing.
#[derive(Default)]
struct Recorder {
    dispatched: Mutex<Vec<CallId>>,
}

#[async_trait]
impl Dispatch for Recorder {
    async fn dispatch(&self, call: Call) {
        self.dispatched.lock().expect("not poisoned").push(call.id);
    }
}

struct Fixture {
    t: TestStore,
    queue: TimedQueue,
}

fn settings(window: u32, limits: DialLimits) -> QueueSettings {
    QueueSettings {
        lease: LeaseTerms { owner: "test".into(), ttl: Duration::from_secs(60) },
        grace: Duration::from_secs(600),
        window,
        batch: 100,
        limits,
    }
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
    let entry = dialajoke::calls::HistoryEntry::now("cancelled", None);
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

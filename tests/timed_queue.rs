//! The timed queue over a real SQLite store, driven step by step (no sleeping): what is due is
//! claimed once, what is not due waits, cancelled and overdue calls are never dialed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dialajoke::calls::hours::{CallingHours, QuietAction};
use dialajoke::calls::{Call, CallId, CallStatus, DueAt, PhoneNumber, Schedule, Timezone};
use dialajoke::scheduler::{Dispatch, QueueSettings, StepOutcome, TimedQueue};
use dialajoke::store::{self, NewCall, Store};

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
    store: Arc<dyn Store>,
    queue: TimedQueue,
    _dir: tempfile::TempDir,
}

fn settings(window: u32, pacing: Option<(u32, Duration)>) -> QueueSettings {
    QueueSettings {
        owner: "test".into(),
        lease: Duration::from_secs(60),
        grace: chrono::Duration::minutes(10),
        window,
        batch: 100,
        pacing,
        calling_hours: CallingHours::Always,
        quiet: QuietAction::Defer,
    }
}

async fn fixture(settings: QueueSettings) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    let store = store::open(&url).await.expect("store opens");
    let queue = TimedQueue::new(Arc::clone(&store), Arc::new(Recorder::default()), settings);
    Fixture { store, queue, _dir: dir }
}

async fn add(fixture: &Fixture, due: DateTime<Utc>) -> CallId {
    let schedule = Schedule {
        to: PhoneNumber::parse("+353 1 234 5678").expect("valid"),
        due_at: DueAt::from_stored(due),
        timezone: Timezone::parse("UTC").expect("zone"),
        note: None,
    };
    let id = CallId::new();
    fixture.store.insert_call(&NewCall { id, schedule, idempotency: None }).await.expect("stored");
    fixture.queue.scheduled(id, DueAt::from_stored(due));
    id
}

async fn status(fixture: &Fixture, id: CallId) -> CallStatus {
    fixture.store.get_call(id).await.expect("read").expect("exists").status
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

#[tokio::test]
async fn nothing_is_dispatched_before_its_time_and_the_queue_says_when_next() {
    let f = fixture(settings(100, None)).await;
    let now = Utc::now();
    let due = now + secs(30);
    add(&f, due).await;

    let outcome = f.queue.step(now).await.expect("step");

    let StepOutcome::Idle(Some(next)) = outcome else { panic!("expected idle, got {outcome:?}") };
    assert_eq!(next.timestamp_millis(), due.timestamp_millis());
}

#[tokio::test]
async fn a_due_call_is_claimed_once_even_if_stepped_twice() {
    let f = fixture(settings(100, None)).await;
    let now = Utc::now();
    let id = add(&f, now + secs(1)).await;

    let first = f.queue.step(now + secs(2)).await.expect("step");
    let second = f.queue.step(now + secs(3)).await.expect("step");

    assert_eq!(first, StepOutcome::Dispatched(vec![id]));
    assert!(matches!(second, StepOutcome::Idle(None)), "{second:?}");
    assert_eq!(status(&f, id).await, CallStatus::Dialing);
}

#[tokio::test]
async fn a_call_scheduled_ahead_of_the_head_is_seen_at_once() {
    let f = fixture(settings(100, None)).await;
    let now = Utc::now();
    add(&f, now + secs(60)).await;
    f.queue.step(now).await.expect("initial load");

    let early = add(&f, now + secs(5)).await;
    let outcome = f.queue.step(now + secs(6)).await.expect("step");

    assert_eq!(outcome, StepOutcome::Dispatched(vec![early]));
}

#[tokio::test]
async fn calls_beyond_the_in_memory_window_are_loaded_when_the_window_drains() {
    let f = fixture(settings(2, None)).await;
    let now = Utc::now();
    let ids = [add(&f, now + secs(1)).await, add(&f, now + secs(2)).await, add(&f, now + secs(3)).await];

    let mut dispatched = Vec::new();
    for _ in 0..4 {
        if let StepOutcome::Dispatched(batch) = f.queue.step(now + secs(10)).await.expect("step") {
            dispatched.extend(batch);
        }
    }

    dispatched.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(dispatched, expected);
}

#[tokio::test]
async fn a_cancelled_call_is_never_dispatched() {
    let f = fixture(settings(100, None)).await;
    let now = Utc::now();
    let id = add(&f, now + secs(1)).await;
    let entry = dialajoke::calls::HistoryEntry::now("cancelled", None);
    let patch = dialajoke::store::CallPatch::default();
    f.store.change_status(id, CallStatus::Scheduled, CallStatus::Cancelled, &patch, &entry).await.expect("cancel");

    let outcome = f.queue.step(now + secs(2)).await.expect("step");

    assert_eq!(outcome, StepOutcome::Dispatched(vec![]));
    assert_eq!(status(&f, id).await, CallStatus::Cancelled);
}

#[tokio::test]
async fn a_call_overdue_beyond_the_grace_period_is_marked_missed_not_dialed() {
    let f = fixture(settings(100, None)).await;
    let now = Utc::now();
    let id = add(&f, now + secs(1)).await;

    f.queue.step(now + chrono::Duration::minutes(30)).await.expect("step");

    assert_eq!(status(&f, id).await, CallStatus::Missed);
}

#[tokio::test]
async fn pacing_holds_back_dials_beyond_the_limit() {
    let f = fixture(settings(100, Some((3, Duration::from_secs(60))))).await;
    let now = Utc::now();
    for offset in 1..=5 {
        add(&f, now + secs(offset)).await;
    }

    let first = f.queue.step(now + secs(10)).await.expect("step");
    let second = f.queue.step(now + secs(10)).await.expect("step");

    let StepOutcome::Dispatched(batch) = first else { panic!("expected a dispatch, got {first:?}") };
    assert_eq!(batch.len(), 3);
    assert!(matches!(second, StepOutcome::Paced(_)), "{second:?}");
}

//! The scheduler over a real SQLite file, without the rest of the service: the timed queue with a
//! dispatcher that records instead of dialling, and the rule materialiser, both driven step by
//! step with chosen instants so tests need neither sleeps nor the wall clock. The store goes by a
//! clock set by hand: the queue asks the store what is due, as it does in service.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dialajoke::app::materialiser::Materialiser;
use dialajoke::app::queue::{Dispatch, QueueSettings, StepOutcome, TimedQueue};
use dialajoke::domain::clock::{Clock, ManualClock};
use dialajoke::domain::hours::{CallingHours, QuietAction};
use dialajoke::domain::limits::Limits;
use dialajoke::domain::plan::PlanSettings;
use dialajoke::domain::{Call, CallId, DueAt, PhoneNumber, Schedule, Timezone};
use dialajoke::store::{DialLimits, LeaseTerms, NewCall, SqliteStore, Store, StoreError};

/// Records what the queue hands over instead of dialing.
#[derive(Default)]
pub struct Recorder {
    /// The calls handed over, in order.
    pub dispatched: Mutex<Vec<CallId>>,
}

#[async_trait]
impl Dispatch for Recorder {
    async fn dispatch(&self, call: Call) {
        self.dispatched.lock().expect("not poisoned").push(call.id);
    }
}

/// A store, a queue and a materialiser over one SQLite file.
pub struct Scheduler {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The timed queue.
    pub queue: TimedQueue,
    /// The rule materialiser.
    pub materialiser: Materialiser,
    /// The store's clock, shared by every instance over the file.
    pub clock: ManualClock,
    /// Where the file lives (another instance may open it too).
    pub db_path: String,
    _dir: Arc<tempfile::TempDir>,
}

/// Queue settings for tests: a ten-minute grace period, `limits` on dialing, no quiet hours.
pub fn queue_settings(window: u32, limits: DialLimits) -> QueueSettings {
    QueueSettings {
        lease: LeaseTerms { owner: "test".into(), ttl: Duration::from_secs(60) },
        grace: Duration::from_secs(600),
        window,
        batch: 100,
        limits,
        calling_hours: CallingHours::Always,
        quiet: QuietAction::Defer,
    }
}

/// A scheduler over a fresh database, its clock reading the wall clock's time until set.
pub async fn scheduler(settings: QueueSettings) -> Scheduler {
    limited_scheduler(settings, Limits::NONE).await
}

/// Like [`scheduler`], over a store whose writes keep to `limits`.
pub async fn limited_scheduler(settings: QueueSettings, limits: Limits) -> Scheduler {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let db_path = dir.path().join("scheduler.db").display().to_string();
    open(settings, &db_path, ManualClock::new(Utc::now()), dir, limits).await
}

impl Scheduler {
    /// A second instance over the same database, with its own store connection, queue and materialiser.
    pub async fn another_instance(&self, settings: QueueSettings) -> Scheduler {
        open(settings, &self.db_path, self.clock.clone(), Arc::clone(&self._dir), Limits::NONE).await
    }

    /// Sets the store's clock to `now` and steps the queue.
    pub async fn step(&self, now: DateTime<Utc>) -> Result<StepOutcome, StoreError> {
        self.clock.set(now);
        self.queue.step().await
    }

    /// Stores a one-off call to `to` (in `zone`) due at `due` and tells the queue.
    pub async fn add_call(&self, to: &str, zone: &str, due: DateTime<Utc>) -> CallId {
        let schedule = Schedule {
            to: PhoneNumber::parse(to).expect("valid number"),
            due_at: DueAt::from_stored(due),
            timezone: Timezone::parse(zone).expect("zone"),
            note: None,
        };
        let id = CallId::new();
        self.store.insert_call(&NewCall { id, schedule, idempotency: None }).await.expect("stored");
        self.queue.scheduled(id, DueAt::from_stored(due));
        id
    }

    /// One call as stored.
    pub async fn call(&self, id: CallId) -> Call {
        self.store.get_call(id).await.expect("read").expect("exists")
    }
}

async fn open(
    settings: QueueSettings,
    db_path: &str,
    clock: ManualClock,
    dir: Arc<tempfile::TempDir>,
    limits: Limits,
) -> Scheduler {
    let store = SqliteStore::open_with_clock(db_path, Clock::Manual(clock.clone()), limits).await.expect("store opens");
    let store: Arc<dyn Store> = Arc::new(store);
    let grace = chrono::Duration::from_std(settings.grace).expect("grace fits");
    let plan = PlanSettings { grace, hours: settings.calling_hours, quiet: settings.quiet };
    let queue = TimedQueue::new(store.clone(), Arc::new(Recorder::default()), settings);
    let materialiser = Materialiser::new(store.clone(), queue.clone(), plan);
    Scheduler { store, queue, materialiser, clock, db_path: db_path.to_owned(), _dir: dir }
}

//! The scheduler over a real store of either backend, without the rest of the service: the timed
//! queue with a dispatcher that records instead of dialling, and the rule materialiser, both
//! driven step by step with chosen instants so tests need neither sleeps nor the wall clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dialajoke::calls::hours::{CallingHours, QuietAction};
use dialajoke::calls::{Call, CallId, DueAt, PhoneNumber, Schedule, Timezone};
use dialajoke::rules::plan::PlanSettings;
use dialajoke::scheduler::materialise::Materialiser;
use dialajoke::scheduler::{Dispatch, QueueSettings, TimedQueue};
use dialajoke::store::{self, DialLimits, LeaseTerms, NewCall, Store};

use super::backends::TestStore;

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

/// A store, a queue and a materialiser over one database.
pub struct Scheduler {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The timed queue.
    pub queue: TimedQueue,
    /// The rule materialiser.
    pub materialiser: Materialiser,
    /// The database, kept while any instance over it lives (another instance may open it too).
    database: Arc<TestStore>,
}

/// Queue settings for tests: a ten-minute grace period, no quiet hours, dials paced as `pacing`
/// (dials, per window) when given.
pub fn queue_settings(window: u32, pacing: Option<(u32, Duration)>) -> QueueSettings {
    QueueSettings {
        lease: LeaseTerms { owner: "test".into(), ttl: Duration::from_secs(60) },
        grace: chrono::Duration::minutes(10),
        window,
        batch: 100,
        limits: DialLimits { rate: pacing, max_active: None },
        calling_hours: CallingHours::Always,
        quiet: QuietAction::Defer,
    }
}

/// A scheduler over a test's own database of either backend.
pub fn scheduler_on(database: TestStore, settings: QueueSettings) -> Scheduler {
    let store = Arc::clone(&database.store);
    build(store, settings, Arc::new(database))
}

impl Scheduler {
    /// A second instance over the same database, with its own store connection, queue and materialiser.
    pub async fn another_instance(&self, settings: QueueSettings) -> Scheduler {
        let store = store::open(&self.database.url).await.expect("store opens again");
        build(store, settings, Arc::clone(&self.database))
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

fn build(store: Arc<dyn Store>, settings: QueueSettings, database: Arc<TestStore>) -> Scheduler {
    let plan = PlanSettings { grace: settings.grace, hours: settings.calling_hours, quiet: settings.quiet };
    let queue = TimedQueue::new(Arc::clone(&store), Arc::new(Recorder::default()), settings);
    let materialiser = Materialiser::new(Arc::clone(&store), queue.clone(), plan);
    Scheduler { store, queue, materialiser, database }
}

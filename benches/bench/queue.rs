//! The timed queue at scale: a million pending calls bulk-loaded into a SQLite store; the memory
//! and start-up time of the service over them; a hundred thousand of them falling due within ten
//! seconds, claimed by the real queue over the real store and handed to a dispatcher that only
//! notes the time; and the default dial pacing against the simulator.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dialajoke::app::queue::{Dispatch, QueueSettings, TimedQueue};
use dialajoke::domain::hours::{CallingHours, QuietAction};
use dialajoke::domain::{Call, CallId};
use dialajoke::store::{DialLimits, LeaseTerms};
use sqlx::SqlitePool;
use telnyx_sim::{RequestKind, SimConfig};
use tokio_util::sync::CancellationToken;

use crate::report::{Latency, Section};
use crate::service::{API_KEY, Launch, Service};

/// How the section is sized.
pub struct Scale {
    /// Calls pending in the store.
    pub pending: u32,
    /// Of which fall due in the burst.
    pub due: u32,
    /// Over this long.
    pub spread: Duration,
    /// Calls due at once for the pacing run.
    pub paced: u32,
}

/// What the section measured.
pub struct QueueFigures {
    /// How long the bulk load took.
    pub load_secs: f64,
    /// Service memory with everything pending (after it settled).
    pub rss_kib: u64,
    /// Its peak.
    pub peak_kib: u64,
    /// Spawn to ready with the million in the store.
    pub ready: Duration,
    /// Lateness of the burst (dispatch minus due), µs.
    pub lateness: Vec<u32>,
    /// Dispatches per second during the burst.
    pub dispatch_rate: f64,
    /// Due calls never dispatched.
    pub lost: u64,
    /// Dispatches beyond the first for the same call.
    pub twice: u64,
    /// Rows left `scheduled` among the due ones.
    pub still_scheduled: u64,
    /// Pacing run: highest dial count in any 5 s window, and the limit.
    pub paced_peak: usize,
    /// The pacing limit per 5 s.
    pub paced_limit: u32,
    /// Pacing run: dials the simulator received.
    pub paced_dials: usize,
}

/// Runs the section.
pub async fn measure(dir: &Path, scale: &Scale) -> QueueFigures {
    let database = dir.join("queue.db");
    let url = format!("sqlite://{}", database.display());
    dialajoke::store::open(&url, dialajoke::domain::limits::Limits::NONE).await.expect("store with migrations");
    let pool = SqlitePool::connect(&url).await.expect("bulk-load connection");
    let far = Utc::now() + chrono::Duration::days(30);
    let loading = std::time::Instant::now();
    bulk_load(&pool, scale.pending, far).await;
    let load_secs = loading.elapsed().as_secs_f64();
    eprintln!("  queue: {} calls loaded in {load_secs:.1} s", scale.pending);

    let (ready, memory) = idle_service_over(&database, dir).await;
    eprintln!("  queue: ready in {:.0} ms, RSS {} KiB", ready.as_secs_f64() * 1000.0, memory.rss_kib);

    let first_due = Utc::now() + chrono::Duration::seconds(4);
    make_due(&pool, far, scale.due, first_due, scale.spread).await;
    let burst = burst(&url, scale, first_due).await;
    let still_scheduled =
        count_scheduled_before(&pool, first_due + chrono::Duration::from_std(scale.spread).unwrap()).await;
    pool.close().await;

    let (paced_dials, paced_peak) = paced(dir, scale.paced).await;
    QueueFigures {
        load_secs,
        rss_kib: memory.rss_kib,
        peak_kib: memory.peak_kib,
        ready,
        lateness: burst.lateness,
        dispatch_rate: burst.rate,
        lost: burst.lost,
        twice: burst.twice,
        still_scheduled,
        paced_peak,
        paced_limit: 150,
        paced_dials,
    }
}

/// Inserts `count` scheduled calls a millisecond apart from `from`, in one statement.
async fn bulk_load(pool: &SqlitePool, count: u32, from: DateTime<Utc>) {
    let now = Utc::now().timestamp_millis();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO calls (id, to_number, due_at, timezone, status, attempt, created_at, updated_at) \
         SELECT printf('%08x-0000-4000-8000-%012x', i, i), '+12015550100', ?2 + i, 'America/New_York', \
                'scheduled', 0, ?3, ?3 FROM n",
    )
    .bind(count)
    .bind(from.timestamp_millis())
    .bind(now)
    .execute(pool)
    .await
    .expect("bulk load");
}

/// Brings the first `count` of the calls loaded from `loaded_from` forward, in one statement, so
/// they fall due evenly over `spread` from `first`.
async fn make_due(pool: &SqlitePool, loaded_from: DateTime<Utc>, count: u32, first: DateTime<Utc>, spread: Duration) {
    let from = loaded_from.timestamp_millis();
    let moved = sqlx::query("UPDATE calls SET due_at = ?1 + (due_at - ?2) * ?3 / ?4 WHERE due_at < ?2 + ?4")
        .bind(first.timestamp_millis())
        .bind(from)
        .bind(i64::try_from(spread.as_millis()).expect("spread"))
        .bind(i64::from(count))
        .execute(pool)
        .await
        .expect("bring calls forward");
    assert_eq!(moved.rows_affected(), u64::from(count), "the burst's calls were moved");
}

async fn count_scheduled_before(pool: &SqlitePool, until: DateTime<Utc>) -> u64 {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE status = 'scheduled' AND due_at <= ?")
        .bind(until.timestamp_millis())
        .fetch_one(pool)
        .await
        .expect("count");
    u64::try_from(n).expect("count")
}

/// Starts the service over the loaded store, lets it settle, and reads its memory.
async fn idle_service_over(database: &Path, dir: &Path) -> (Duration, crate::service::Memory) {
    let telnyx = telnyx_sim::start(SimConfig::local(API_KEY)).await.expect("simulator");
    let launch = Launch { database, telnyx: &telnyx, public_key: None, env: Vec::new(), log: dir.join("queue.log") };
    let service = Service::start(launch).await;
    // Memory "while they wait": after the queue loaded its window and housekeeping ran once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let memory = service.memory_kib();
    let ready = service.ready_after;
    service.stop();
    telnyx.stop().await;
    (ready, memory)
}

/// A call handed over: its id, when it was due, when it arrived.
type Handed = (CallId, DateTime<Utc>, DateTime<Utc>);

/// Notes when each call was handed over.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Handed>>,
    done: tokio::sync::Notify,
    expected: usize,
}

#[async_trait]
impl Dispatch for Recorder {
    async fn dispatch(&self, call: Call) {
        let now = Utc::now();
        let mut seen = self.seen.lock().expect("recorder");
        seen.push((call.id, call.due_at.instant(), now));
        if seen.len() >= self.expected {
            self.done.notify_one();
        }
    }
}

struct Burst {
    lateness: Vec<u32>,
    rate: f64,
    lost: u64,
    twice: u64,
}

async fn burst(url: &str, scale: &Scale, first_due: DateTime<Utc>) -> Burst {
    let store = dialajoke::store::open(url, dialajoke::domain::limits::Limits::NONE).await.expect("store");
    let recorder = Arc::new(Recorder { expected: scale.due as usize, ..Recorder::default() });
    let settings = QueueSettings {
        lease: LeaseTerms { owner: "bench".into(), ttl: Duration::from_secs(120) },
        grace: Duration::from_secs(600),
        window: 10_000,
        batch: 500,
        limits: DialLimits::unlimited(),
        // The bench measures the queue's mechanics; the callees' quiet hours would move calls.
        calling_hours: CallingHours::Always,
        quiet: QuietAction::Defer,
    };
    let queue = TimedQueue::new(store, Arc::clone(&recorder) as Arc<dyn Dispatch>, settings);
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let (queue, stop) = (queue.clone(), stop.clone());
        async move { queue.run(stop, Duration::from_secs(5)).await }
    });
    let bound = (first_due - Utc::now()).to_std().unwrap_or_default() + scale.spread + Duration::from_secs(60);
    let finished = tokio::time::timeout(bound, recorder.done.notified()).await.is_ok();
    stop.cancel();
    running.await.expect("queue task");
    let seen = std::mem::take(&mut *recorder.seen.lock().expect("recorder"));
    if !finished {
        eprintln!("  queue: only {} of {} dispatched in time", seen.len(), scale.due);
    }
    let distinct: HashSet<CallId> = seen.iter().map(|(id, _, _)| *id).collect();
    let lateness: Vec<u32> = seen
        .iter()
        .map(|(_, due, at)| {
            u32::try_from((*at - *due).num_microseconds().unwrap_or(i64::MAX).max(0)).unwrap_or(u32::MAX)
        })
        .collect();
    let last = seen.iter().map(|(_, _, at)| *at).max().unwrap_or(first_due);
    let span = (last - first_due).to_std().unwrap_or_default().as_secs_f64().max(1e-3);
    Burst {
        rate: seen.len() as f64 / span,
        lost: u64::from(scale.due).saturating_sub(distinct.len() as u64),
        twice: (seen.len() - distinct.len()) as u64,
        lateness,
    }
}

/// `count` calls due at once against the simulator with the default pacing: how many dials
/// reached it, and the most in any 5 s window.
async fn paced(dir: &Path, count: u32) -> (usize, usize) {
    let database = dir.join("paced.db");
    let url = format!("sqlite://{}", database.display());
    dialajoke::store::open(&url, dialajoke::domain::limits::Limits::NONE).await.expect("store");
    let pool = SqlitePool::connect(&url).await.expect("pool");
    bulk_load(&pool, count, Utc::now() + chrono::Duration::seconds(3)).await;
    pool.close().await;
    let telnyx = telnyx_sim::start(SimConfig::local(API_KEY)).await.expect("simulator");
    let launch =
        Launch { database: &database, telnyx: &telnyx, public_key: None, env: Vec::new(), log: dir.join("paced.log") };
    let service = Service::start(launch).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while telnyx.count_requests(RequestKind::Dial) < count as usize && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dials = telnyx.count_requests(RequestKind::Dial);
    let peak = telnyx.max_dials_in_window(Duration::from_secs(5));
    service.stop();
    telnyx.stop().await;
    eprintln!("  queue: pacing run, {dials} dials, at most {peak} in any 5 s");
    (dials, peak)
}

impl QueueFigures {
    /// The section of the report.
    pub fn section(&self, scale: &Scale) -> Section {
        let mut s = Section::new("Timed queue");
        s.figure("pending", f64::from(scale.pending), "calls");
        s.figure("bulk_load", self.load_secs, "s");
        s.figure("rss_with_pending", self.rss_kib as f64 / 1024.0, "MiB");
        s.figure("peak_rss_with_pending", self.peak_kib as f64 / 1024.0, "MiB");
        s.figure("ready_with_pending", self.ready.as_secs_f64() * 1000.0, "ms");
        s.figure("burst_due", f64::from(scale.due), "calls");
        s.figure("burst_spread", scale.spread.as_secs_f64(), "s");
        s.latency("burst_lateness", &Latency::of(&self.lateness));
        s.figure("burst_dispatch_rate", self.dispatch_rate, "calls/s");
        s.figure("burst_lost", self.lost as f64, "calls");
        s.figure("burst_twice", self.twice as f64, "calls");
        s.figure("burst_left_scheduled", self.still_scheduled as f64, "calls");
        s.figure("paced_calls", f64::from(scale.paced), "calls");
        s.figure("paced_dials_seen", self.paced_dials as f64, "dials");
        s.figure("paced_peak_5s", self.paced_peak as f64, "dials");
        s.figure("paced_limit_5s", f64::from(self.paced_limit), "dials");
        s
    }
}

//! The page and the API under load, and the service idle: `GET /` with a hundred calls listed,
//! `POST /api/calls`, then memory and start-up time with an empty store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use serde_json::json;

use crate::driver::{self, Load, Repeat, Source};
use crate::intake::Run;
use crate::report::Section;
use crate::service::{API_KEY, Launch, Memory, Service};

/// What the section measured.
pub struct WebFigures {
    /// `GET /` with the calls listed.
    pub page: Run,
    /// `POST /api/calls`.
    pub api: Run,
    /// Calls the API accepted (201) and the store holds afterwards.
    pub api_stored: u64,
    /// Spawn-to-ready with an empty store, over several starts (ms).
    pub ready_ms: Vec<f64>,
    /// Memory of the idle service.
    pub idle: Memory,
}

fn page(host: String) -> Arc<dyn Source> {
    Arc::new(Repeat(move |_| Request::get("/").header("host", &host).body(Full::new(Bytes::new())).expect("request")))
}

fn schedule(host: String) -> Arc<dyn Source> {
    let at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    Arc::new(Repeat(move |n| {
        let body = json!({ "to": format!("+1201555{:04}", 100 + n % 100), "at": at }).to_string();
        Request::post("/api/calls")
            .header("host", &host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    }))
}

async fn seed_calls(base: &str, count: usize) {
    let client = reqwest::Client::new();
    let at = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    for n in 0..count {
        let body = json!({ "to": format!("+1201555{:04}", 100 + n % 100), "at": at });
        let response = client.post(format!("{base}/api/calls")).json(&body).send().await.expect("schedule");
        assert_eq!(response.status(), 201, "seed call accepted");
    }
}

/// Runs the section.
pub async fn measure(dir: &Path, connections: usize, duration: Duration, listed: usize) -> WebFigures {
    let telnyx = telnyx_sim::start(telnyx_sim::SimConfig::local(API_KEY)).await.expect("simulator");
    let unlimited = [
        "DIALAJOKE_LIMIT_PER_NUMBER_HOUR",
        "DIALAJOKE_LIMIT_PER_NUMBER_DAY",
        "DIALAJOKE_LIMIT_GLOBAL_HOUR",
        "DIALAJOKE_LIMIT_GLOBAL_DAY",
    ]
    .map(|name| (name, "0".to_owned()))
    .to_vec();

    let (ready_ms, idle) = idle(dir, &telnyx).await;

    let database = dir.join("web.db");
    let launch =
        Launch { database: &database, telnyx: &telnyx, public_key: None, env: unlimited, log: dir.join("web.log") };
    let service = Service::start(launch).await;
    let base = format!("http://{}", service.addr);
    seed_calls(&base, listed).await;
    let load = Load { connections, duration };
    let page: Run = driver::run(service.addr, page(service.addr.to_string()), load).await.into();
    eprintln!("  web: GET / {:.0}/s", page.rate);
    let api: Run = driver::run(service.addr, schedule(service.addr.to_string()), load).await.into();
    eprintln!("  web: POST /api/calls {:.0}/s", api.rate);
    service.stop();
    telnyx.stop().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display())).await.expect("open");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(&pool).await.expect("count");
    pool.close().await;
    let api_stored = u64::try_from(stored).expect("count") - listed as u64;
    WebFigures { page, api, api_stored, ready_ms, idle }
}

/// Starts the service over an empty store five times; the memory is read on the last, idle for 2 s.
async fn idle(dir: &Path, telnyx: &telnyx_sim::SimHandle) -> (Vec<f64>, Memory) {
    let mut ready_ms = Vec::new();
    let mut memory = None;
    for round in 0..5 {
        let database = dir.join(format!("idle-{round}.db"));
        let launch =
            Launch { database: &database, telnyx, public_key: None, env: Vec::new(), log: dir.join("idle.log") };
        let service = Service::start(launch).await;
        ready_ms.push(service.ready_after.as_secs_f64() * 1000.0);
        if round == 4 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            memory = Some(service.memory_kib());
        }
        service.stop();
    }
    (ready_ms, memory.expect("measured"))
}

impl WebFigures {
    /// The sections of the report (page and API; idle).
    pub fn sections(&self, listed: usize) -> (Section, Section) {
        let mut s = Section::new("Page and API");
        s.figure("listed_calls", listed as f64, "calls");
        s.figure("page_rps", self.page.rate, "req/s");
        s.latency("page", &self.page.latency);
        s.figure("page_failed", self.page.failed as f64, "requests");
        s.figure("api_rps", self.api.rate, "req/s");
        s.latency("api", &self.api.latency);
        s.figure("api_failed", self.api.failed as f64, "requests");
        s.figure("api_accepted", self.api.ok as f64, "calls");
        s.figure("api_stored", self.api_stored as f64, "calls");
        let mut i = Section::new("Idle");
        i.figure("idle_rss", self.idle.rss_kib as f64 / 1024.0, "MiB");
        i.figure("idle_peak_rss", self.idle.peak_kib as f64 / 1024.0, "MiB");
        let mut sorted = self.ready_ms.clone();
        sorted.sort_by(f64::total_cmp);
        i.figure("ready_median", sorted[sorted.len() / 2], "ms");
        i.figure("ready_worst", sorted[sorted.len() - 1], "ms");
        (s, i)
    }
}

//! Webhook intake: realistic Telnyx call events, each with its own event id and a fresh valid
//! signature, sent at 1, 16 and 64 connections to the verify-only ceiling and then to the service
//! (which records each in its inbox), in the same run. Afterwards every accepted event is counted
//! in the service's database.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use serde_json::json;

use crate::ceiling::Ceiling;
use crate::driver::{self, Load, Outcome, Source};
use crate::report::{Latency, Section};
use crate::service::{Launch, Service};
use dialajoke::telnyx::signature::{SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER};

/// The event types a dialled call sends, in order; the load cycles through them.
const EVENTS: [&str; 5] = ["call.initiated", "call.answered", "call.speak.started", "call.speak.ended", "call.hangup"];

struct Signed {
    body: Bytes,
    timestamp: String,
    signature: String,
}

struct Webhooks {
    signed: Vec<Signed>,
    host: String,
}

impl Source for Webhooks {
    fn request(&self, n: usize) -> Option<Request<Full<Bytes>>> {
        let hook = self.signed.get(n)?;
        let request = Request::post("/webhook")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("user-agent", "telnyx-webhooks")
            .header(TIMESTAMP_HEADER, &hook.timestamp)
            .header(SIGNATURE_HEADER, &hook.signature)
            .body(Full::new(hook.body.clone()))
            .expect("request");
        Some(request)
    }
}

fn event(n: usize, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let call = n / EVENTS.len();
    let kind = EVENTS[n % EVENTS.len()];
    let occurred = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({
        "data": {
            "event_type": kind,
            "id": uuid::Uuid::new_v4().to_string(),
            "occurred_at": occurred,
            "payload": {
                "call_control_id": format!("v3:bench-{call:012}-{}", uuid::Uuid::new_v4().simple()),
                "call_leg_id": uuid::Uuid::new_v4().to_string(),
                "call_session_id": uuid::Uuid::new_v4().to_string(),
                "client_state": null,
                "connection_id": "1494404757140276705",
                "from": "+12025550199",
                "to": "+12015550100",
                "direction": "outgoing",
                "state": kind.trim_start_matches("call."),
                "start_time": occurred,
            },
            "record_type": "event"
        },
        "meta": { "attempt": 1, "delivered_to": "http://127.0.0.1/webhook" }
    })
}

/// Signs `count` distinct events on every core (signing is the slow part, and must not happen
/// while the clock runs).
fn sign(signer: &Signer, count: usize) -> Vec<Signed> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let now = chrono::Utc::now();
                    let timestamp = now.timestamp();
                    (t * per..((t + 1) * per).min(count))
                        .map(|n| {
                            let body = serde_json::to_vec(&event(n, now)).expect("json");
                            let signature = signer.sign(timestamp, &body);
                            Signed { body: Bytes::from(body), timestamp: timestamp.to_string(), signature }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("signing thread")).collect()
    })
}

/// One connection count's figures.
pub struct Level {
    /// Connections.
    pub connections: usize,
    /// The verify-only endpoint.
    pub ceiling: Run,
    /// The service.
    pub service: Run,
}

/// One load run's figures.
pub struct Run {
    /// Requests per second answered.
    pub rate: f64,
    /// Latency distribution.
    pub latency: Latency,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
    /// The pre-signed events ran out before the time was up.
    pub exhausted: bool,
    /// Raw latencies (µs), for the plots.
    pub samples: Vec<u32>,
}

impl From<Outcome> for Run {
    fn from(outcome: Outcome) -> Self {
        Run {
            rate: outcome.rate(),
            latency: Latency::of(&outcome.latencies_us),
            ok: outcome.ok,
            failed: outcome.refused + outcome.errors,
            exhausted: outcome.exhausted,
            samples: outcome.latencies_us,
        }
    }
}

/// What the intake section measured.
pub struct Intake {
    /// Per connection count.
    pub levels: Vec<Level>,
    /// Events the service acknowledged with 2xx, over all runs.
    pub acknowledged: u64,
    /// Events found in its inbox at the end.
    pub stored: u64,
}

/// Events to sign ahead of a run at `connections`: more than either side can take in the time.
fn budget(connections: usize, duration: Duration) -> usize {
    let per_second = if connections == 1 { 20_000 } else { 40_000 };
    per_second * duration.as_secs() as usize
}

/// Runs the intake section.
pub async fn measure(dir: &Path, levels: &[usize], duration: Duration) -> Intake {
    let signer = Signer::generate();
    let telnyx = telnyx_sim::start(telnyx_sim::SimConfig::local(crate::service::API_KEY)).await.expect("simulator");
    let database = dir.join("intake.db");
    let service = Service::start(Launch {
        database: &database,
        telnyx: &telnyx,
        public_key: Some(signer.public_key_base64()),
        env: Vec::new(),
        log: dir.join("intake.log"),
    })
    .await;
    let ceiling = Ceiling::start(&signer.public_key_base64()).await;
    let mut results = Vec::new();
    for &connections in levels {
        let load = Load { connections, duration };
        let webhooks = |addr: std::net::SocketAddr| {
            let signed = sign(&signer, budget(connections, duration));
            Arc::new(Webhooks { signed, host: addr.to_string() }) as Arc<dyn Source>
        };
        let bare = driver::run(ceiling.addr, webhooks(ceiling.addr), load).await;
        let real = driver::run(service.addr, webhooks(service.addr), load).await;
        eprintln!(
            "  intake at {connections:>2} connections: ceiling {:.0}/s, service {:.0}/s",
            bare.rate(),
            real.rate()
        );
        results.push(Level { connections, ceiling: bare.into(), service: real.into() });
    }
    ceiling.stop();
    service.stop();
    telnyx.stop().await;
    let acknowledged = results.iter().map(|level| level.service.ok).sum();
    let stored = count_inbox(&database).await;
    Intake { levels: results, acknowledged, stored }
}

async fn count_inbox(database: &Path) -> u64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display())).await.expect("open");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox").fetch_one(&pool).await.expect("count");
    pool.close().await;
    u64::try_from(count).expect("a count")
}

impl Intake {
    /// The section of the report.
    pub fn section(&self) -> Section {
        let mut section = Section::new("Webhook intake");
        for level in &self.levels {
            let c = level.connections;
            section.figure(format!("ceiling_{c}_rps"), level.ceiling.rate, "req/s");
            section.latency(format!("ceiling_{c}"), &level.ceiling.latency);
            section.figure(format!("service_{c}_rps"), level.service.rate, "req/s");
            section.latency(format!("service_{c}"), &level.service.latency);
            section.figure(format!("service_{c}_ratio"), level.service.rate / level.ceiling.rate, "of ceiling");
            section.figure(format!("service_{c}_failed"), level.service.failed as f64, "requests");
            section.flag(format!("service_{c}_exhausted"), level.service.exhausted || level.ceiling.exhausted);
        }
        section.figure("acknowledged", self.acknowledged as f64, "events");
        section.figure("stored", self.stored as f64, "events");
        section
    }
}

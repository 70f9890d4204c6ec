//! The load: calls scheduled through the API at planned moments, each with its own
//! `Idempotency-Key`, so a request cut off by a kill is simply sent again until the restarted
//! service answers, without ever scheduling the call twice.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use dialajoke::sim::{Behaviour, test_number};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

/// How long one call may keep failing to be scheduled (the service being down) before the test
/// gives up.
const POST_BOUND: Duration = Duration::from_secs(30);

/// One call to schedule.
#[derive(Debug, Clone)]
pub struct PlannedCall {
    /// Its Idempotency-Key.
    pub key: String,
    /// What the callee does.
    pub behaviour: Behaviour,
    /// When to schedule it, from the start of the run.
    pub post_at: Duration,
    /// How long after it is scheduled it falls due.
    pub lead: Duration,
}

/// A call the service accepted.
#[derive(Debug, Clone)]
pub struct ScheduledCall {
    /// Its id.
    pub id: String,
    /// What the callee does.
    pub behaviour: Behaviour,
}

/// What the load did.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// The calls, each once.
    pub calls: Vec<ScheduledCall>,
    /// Requests that had to be sent again because the service was down.
    pub retried_posts: usize,
}

/// Spreads `count` calls evenly over `span`, each with a random callee and a due time `lead`
/// (drawn from the range) after it is scheduled.
pub fn plan_calls(rng: &mut StdRng, count: usize, span: Duration, lead: (Duration, Duration)) -> Vec<PlannedCall> {
    (0..count)
        .map(|index| PlannedCall {
            key: format!("crash-{index}"),
            behaviour: Behaviour::ALL[rng.gen_range(0..Behaviour::ALL.len())],
            post_at: span.mul_f64(index as f64 / count as f64),
            lead: rng.gen_range(lead.0..=lead.1),
        })
        .collect()
}

/// Schedules every planned call at its moment; returns once all are accepted.
pub async fn schedule(base: String, plan: Vec<PlannedCall>) -> LoadOutcome {
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("client");
    let start = tokio::time::Instant::now();
    let mut outcome = LoadOutcome::default();
    for call in plan {
        tokio::time::sleep_until(start + call.post_at).await;
        let (id, attempts) = post_until_accepted(&http, &base, &call).await;
        outcome.retried_posts += attempts - 1;
        outcome.calls.push(ScheduledCall { id, behaviour: call.behaviour });
    }
    outcome
}

/// Sends the scheduling request until the service answers it; returns the call id and how many
/// requests it took.
async fn post_until_accepted(http: &reqwest::Client, base: &str, call: &PlannedCall) -> (String, usize) {
    let at = Utc::now() + chrono::Duration::from_std(call.lead).expect("short lead");
    let body = json!({ "to": test_number(call.behaviour), "at": at.to_rfc3339_opts(SecondsFormat::Millis, true) });
    let deadline = tokio::time::Instant::now() + POST_BOUND;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = http.post(format!("{base}/api/calls")).header("idempotency-key", &call.key).json(&body).send().await;
        match sent {
            Ok(response) if response.status() == 201 => {
                let created: Value = response.json().await.expect("call JSON");
                return (created["id"].as_str().expect("id").to_owned(), attempts);
            }
            // The service is down or restarting (connection refused or cut, or unavailable).
            Ok(response) if response.status().is_server_error() => {}
            Err(_) => {}
            Ok(response) => {
                let status = response.status();
                panic!(
                    "scheduling {} was refused with {status}: {}",
                    call.key,
                    response.text().await.unwrap_or_default()
                )
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{} could not be scheduled within {POST_BOUND:?}", call.key);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

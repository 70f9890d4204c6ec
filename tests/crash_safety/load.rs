//! The load: calls scheduled through the API at planned moments, each with its own
//! `Idempotency-Key`, so a request cut off by a kill is simply sent again until the restarted
//! service answers, without ever scheduling the call twice.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use rand::rngs::StdRng;
use telnyx_sim::Behaviour;

use crate::common::audit::AcceptedCall;
use crate::common::scheduling::{load_client, post_until_accepted};

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

/// What the load did.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// The calls, each once.
    pub calls: Vec<AcceptedCall>,
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
    let http = load_client();
    let start = tokio::time::Instant::now();
    let mut outcome = LoadOutcome::default();
    for call in plan {
        tokio::time::sleep_until(start + call.post_at).await;
        let at = Utc::now() + chrono::Duration::from_std(call.lead).expect("short lead");
        let (id, attempts) = post_until_accepted(&http, &base, &call.key, call.behaviour, at).await;
        outcome.retried_posts += attempts - 1;
        outcome.calls.push(AcceptedCall { id, behaviour: call.behaviour });
    }
    outcome
}

//! Crash safety: the real `dialajoke` binary is killed with SIGKILL at random moments while calls
//! are being scheduled and placed, and started again each time over the same database and port.
//! The Telnyx simulator runs in this test's process, so it outlives every kill, keeps retrying its
//! webhooks as Telnyx does, and records every call it places and every webhook the service
//! acknowledged. At the end every call must be final, placed at most once (exactly once when it
//! got anywhere), and every acknowledged webhook must be in the inbox and applied.
//!
//! `cargo test --test crash_safety` runs the short version (100 calls over 10 s, 2 kills).
//! `DIALAJOKE_SOAK=1` (what `make soak` sets) runs the full one (1,000 calls over a minute,
//! 6 kills). Each run prints its random seed; `DIALAJOKE_SOAK_SEED=N` replays its kill moments and
//! its mix of callees.

use dialajoke_test_support as common;

mod audit;
mod load;
mod service;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use service::Service;
use telnyx_sim::{self as sim, ApiFault, ApiFaultKind, Faults, SimConfig, Timing};

const API_KEY: &str = "crash-key";
/// The simulator's signing seed; any fixed value works, the service is given its public key.
const SIGNING_SEED: [u8; 32] = [11; 32];

/// The size of a run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    calls: usize,
    kills: usize,
    /// How long calls keep being scheduled; the kills fall within it, shifted by the shortest lead.
    span: Duration,
    /// How long after being scheduled a call falls due: the shortest and the longest. The
    /// shortest is well above a restart, so a request retried after a kill is still in the future.
    lead: (Duration, Duration),
    /// How long the run may take to settle after the last call was scheduled.
    settle: Duration,
}

impl Plan {
    fn short() -> Self {
        Self {
            calls: 100,
            kills: 2,
            span: Duration::from_secs(10),
            lead: (Duration::from_secs(3), Duration::from_secs(6)),
            settle: Duration::from_secs(60),
        }
    }

    fn soak() -> Self {
        Self {
            calls: 1000,
            kills: 6,
            span: Duration::from_secs(60),
            lead: (Duration::from_secs(3), Duration::from_secs(8)),
            settle: Duration::from_secs(120),
        }
    }

    fn from_env() -> Self {
        match std::env::var("DIALAJOKE_SOAK") {
            Ok(value) if !value.is_empty() && value != "0" => Self::soak(),
            _ => Self::short(),
        }
    }
}

fn seed() -> u64 {
    match std::env::var("DIALAJOKE_SOAK_SEED") {
        Ok(text) => text.parse().expect("DIALAJOKE_SOAK_SEED is a whole number"),
        Err(_) => rand::random(),
    }
}

/// Fast calls that still last a few seconds: API answers take a quarter of a second (acted on at
/// once, answered late) and each webhook leaves 300 ms after its event, so every kill finds calls
/// mid-way, dials whose answer has not come back, and commands in flight. Webhooks are retried for
/// about two minutes in all, like Telnyx, which outlasts any restart.
fn simulator_config() -> SimConfig {
    let mut config = SimConfig::local(API_KEY);
    config.signing_seed = Some(SIGNING_SEED);
    let mut latency = ApiFault::next(ApiFaultKind::Slow, u32::MAX);
    latency.hold_ms = 250;
    config.faults = Faults { api: vec![latency], ..Faults::default() };
    config.faults.webhooks.delay_ms = 300;
    config.timing = Timing {
        ring: Duration::from_millis(300),
        no_answer_cap: Duration::from_millis(600),
        speak_base: Duration::from_millis(50),
        speak_per_char: Duration::from_millis(2),
        delivery_attempts: 10,
        first_retry: Duration::from_millis(250),
        ..Timing::fast()
    };
    config
}

/// Kills the service at one random moment in each equal part of the span (shifted by the shortest
/// lead, so that calls are falling due), restarting it each time; now and then the kill comes instead a few milliseconds after the previous restart, while
/// the service recovers. Returns when each kill happened.
async fn kill_at_random_moments(service: &mut Service, rng: &mut StdRng, plan: &Plan) -> Vec<DateTime<Utc>> {
    let start = tokio::time::Instant::now();
    let part = plan.span.div_f64(plan.kills as f64);
    let mut kills = Vec::with_capacity(plan.kills);
    for index in 0..plan.kills {
        let moment = part.mul_f64(index as f64 + rng.gen_range(0.1..0.9));
        let while_recovering = index > 0 && rng.gen_bool(0.3);
        let soon_after_restart = Duration::from_millis(rng.gen_range(0..300));
        if while_recovering {
            tokio::time::sleep(soon_after_restart).await;
        } else {
            tokio::time::sleep_until(start + plan.lead.0 + moment).await;
        }
        service.kill();
        kills.push(Utc::now());
        println!(
            "crash-safety: kill {} at {:?}{}",
            index + 1,
            start.elapsed(),
            if while_recovering { " (while recovering)" } else { "" }
        );
        service.start().await;
    }
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_sigkills_final_and_dialed_once_with_no_acknowledged_webhook_lost() {
    let plan = Plan::from_env();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = sim::start(simulator_config()).await.expect("simulator starts");
    let mut service = Service::new(&sim, API_KEY);
    println!("crash-safety: seed={seed} {plan:?}; database and log in {}", service.dir().display());
    service.start().await;

    let calls = load::plan_calls(&mut rng, plan.calls, plan.span, plan.lead);
    let load = tokio::spawn(load::schedule(service.base(), calls));
    let kills = kill_at_random_moments(&mut service, &mut rng, &plan).await;
    let load = load.await.expect("the load ran to its end");
    let report = audit::settle_and_check(&service, &sim, &load, &kills, plan.settle + plan.lead.1).await;

    println!("{report}");
    report.assert_all_good();
    service.finish();
}

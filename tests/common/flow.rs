//! Helpers for whole call flows against the simulator: schedule a call to a test number, let it
//! run to its end, and read what the simulator was asked.

use std::time::Duration;

use serde_json::Value;
use telnyx_sim::{Behaviour, JournalEntry, RequestKind, RequestRecord, test_number};

use super::{FLOW_BOUND, TestApp};

/// How far ahead the tests schedule a call they want dialled at once.
pub const SOON: Duration = Duration::from_millis(700);

/// How many dials, speaks and hangups the simulator received.
pub fn counts(app: &TestApp) -> [usize; 3] {
    [RequestKind::Dial, RequestKind::Speak, RequestKind::Hangup].map(|kind| app.sim.count_requests(kind))
}

/// The requests of one kind the simulator received, in order.
pub fn requests_of(app: &TestApp, kind: RequestKind) -> Vec<RequestRecord> {
    app.sim
        .journal()
        .into_iter()
        .filter_map(|entry| match entry {
            JournalEntry::Request(request) if request.kind == Some(kind) => Some(request),
            _ => None,
        })
        .collect()
}

/// The bodies of the dials the simulator received, in order.
pub fn dial_bodies(app: &TestApp) -> Vec<Value> {
    requests_of(app, RequestKind::Dial).into_iter().map(|request| request.body).collect()
}

/// Schedules a call to the test number of `behaviour`, waits until it is final and the simulator
/// has settled, and returns it with its history.
pub async fn run_to_the_end(app: &TestApp, behaviour: Behaviour) -> Value {
    let created = app.schedule_in(test_number(behaviour), SOON).await;
    let id = created["id"].as_str().expect("id").to_owned();
    app.wait_until_final(&id).await;
    app.sim.wait_until_idle(FLOW_BOUND).await.expect("simulator settles");
    app.call(&id).await
}

/// Waits until every webhook event the service took in has been applied.
pub async fn wait_until_applied(app: &TestApp) {
    super::poll::poll_until("every webhook event was applied", FLOW_BOUND, || async {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL")
            .fetch_one(&app.db().await)
            .await
            .expect("count");
        if pending == 0 { Ok(()) } else { Err(format!("{pending} events pending")) }
    })
    .await
}

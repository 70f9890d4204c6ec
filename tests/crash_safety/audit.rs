//! The end of a run: wait (bounded) until every call is final, the inbox is drained and the
//! simulator is idle, then count what went wrong from the service's database and the simulator's
//! own records (what it placed, what it delivered), never from what the service says of itself.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use dialajoke::calls::CallStatus;
use dialajoke::sim::{Behaviour, CallSnapshot, JournalEntry, SimHandle};
use sqlx::SqlitePool;

use crate::load::{LoadOutcome, ScheduledCall};
use crate::service::Service;

/// Everything a run is judged by.
#[derive(Debug, Default)]
pub struct Report {
    /// Kills the service came back from.
    pub kills: usize,
    /// Calls the API accepted.
    pub calls: usize,
    /// Calls in a final state at the end.
    pub final_calls: usize,
    /// Calls never dialed, failed with a reason (a dial Telnyx refused until retries ran out).
    pub undialed: usize,
    /// Webhook deliveries the service acknowledged with a 2xx.
    pub acknowledged: usize,
    /// Dials resent with their command id after a kill.
    pub resent_dials: i64,
    /// Events acknowledged before a kill and applied only after it, from the inbox.
    pub replayed_events: i64,
    /// Scheduling requests sent again because the service was down.
    pub retried_posts: usize,
    /// Accepted calls missing from the database, and acknowledged events missing from the inbox.
    pub lost: Vec<String>,
    /// Calls the simulator placed more than once, and calls stored more than once.
    pub duplicates: Vec<String>,
    /// Calls not final at the end, and inbox events never applied.
    pub stuck: Vec<String>,
    /// Calls whose final state disagrees with what the simulator did.
    pub wrong: Vec<String>,
    /// Where the database and the log of the run are.
    pub dir: PathBuf,
}

/// Waits at most `bound` for the run to settle, then checks it.
pub async fn settle_and_check(
    service: &Service,
    sim: &SimHandle,
    load: &LoadOutcome,
    kills: &[DateTime<Utc>],
    bound: Duration,
) -> Report {
    let db = SqlitePool::connect(&service.database_url()).await.expect("database opens");
    let deadline = tokio::time::Instant::now() + bound;
    while !settled(&db, sim).await && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut report = Report { kills: kills.len(), dir: service.dir().to_owned(), ..Report::default() };
    report.check_calls(&db, sim, load).await;
    report.check_inbox(&db, sim).await;
    report.resent_dials = sqlx::query_scalar("SELECT COUNT(*) FROM call_events WHERE kind = 'dial_resent'")
        .fetch_one(&db)
        .await
        .expect("count");
    for kill in kills {
        let at = kill.timestamp_millis();
        let replayed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE received_at < ? AND processed_at > ?")
            .bind(at)
            .bind(at)
            .fetch_one(&db)
            .await
            .expect("count");
        report.replayed_events += replayed;
    }
    report.retried_posts = load.retried_posts;
    report
}

async fn settled(db: &SqlitePool, sim: &SimHandle) -> bool {
    let statuses = stored_calls(db).await;
    let open_events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").fetch_one(db).await.expect("count");
    statuses.values().all(|(status, _)| status.is_terminal()) && open_events == 0 && sim.activity().is_idle()
}

/// Every stored call: status and last error, by id.
async fn stored_calls(db: &SqlitePool) -> HashMap<String, (CallStatus, Option<String>)> {
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, last_error FROM calls").fetch_all(db).await.expect("calls");
    rows.into_iter().map(|(id, status, error)| (id, (status.parse().expect("a known status"), error))).collect()
}

/// The calls the simulator placed, by the call id our `client_state` carries.
fn placed_by_call(sim: &SimHandle) -> HashMap<String, Vec<CallSnapshot>> {
    let mut placed: HashMap<String, Vec<CallSnapshot>> = HashMap::new();
    for call in sim.calls() {
        let state = call.client_state.as_deref().expect("every dial carries client_state");
        let id = String::from_utf8(BASE64.decode(state).expect("base64")).expect("UTF-8");
        placed.entry(id).or_default().push(call);
    }
    placed
}

/// The final status the simulated callee leads to.
fn expected_status(behaviour: Behaviour) -> CallStatus {
    match behaviour {
        Behaviour::Answer | Behaviour::Machine | Behaviour::HangupMidJoke => CallStatus::Completed,
        Behaviour::Busy => CallStatus::Busy,
        Behaviour::NoAnswer => CallStatus::NoAnswer,
        Behaviour::Reject => CallStatus::Rejected,
    }
}

impl Report {
    async fn check_calls(&mut self, db: &SqlitePool, sim: &SimHandle, load: &LoadOutcome) {
        let stored = stored_calls(db).await;
        let placed = placed_by_call(sim);
        self.calls = load.calls.len();
        if stored.len() > load.calls.len() {
            self.duplicates.push(format!("{} calls stored for {} scheduled", stored.len(), load.calls.len()));
        }
        for call in &load.calls {
            let Some((status, error)) = stored.get(&call.id) else {
                self.lost.push(format!("call {} accepted but not stored", call.id));
                continue;
            };
            self.check_call(call, *status, error.as_deref(), placed.get(&call.id).map_or(&[][..], Vec::as_slice));
        }
    }

    fn check_call(&mut self, call: &ScheduledCall, status: CallStatus, error: Option<&str>, placed: &[CallSnapshot]) {
        let id = &call.id;
        if status.is_terminal() {
            self.final_calls += 1;
        } else {
            self.stuck.push(format!("call {id} still {status}"));
        }
        match placed {
            [] if status == CallStatus::Failed && error.is_some() => self.undialed += 1,
            [] => self.wrong.push(format!("call {id} is {status} but was never dialed")),
            [one] => {
                let cut_off = one.hangup_cause.as_deref() == Some("time_limit");
                if status != expected_status(call.behaviour) || cut_off {
                    let cause = one.hangup_cause.as_deref().unwrap_or("none");
                    self.wrong
                        .push(format!("call {id} ({}) is {status}; the simulator's hangup: {cause}", call.behaviour));
                }
            }
            many => self.duplicates.push(format!("call {id} was placed {} times", many.len())),
        }
    }

    async fn check_inbox(&mut self, db: &SqlitePool, sim: &SimHandle) {
        let inbox: HashSet<String> =
            sqlx::query_scalar("SELECT event_id FROM inbox").fetch_all(db).await.expect("inbox").into_iter().collect();
        let acknowledged: HashSet<String> = sim
            .journal()
            .into_iter()
            .filter_map(|entry| match entry {
                JournalEntry::Delivery(delivery) if delivery.outcome.is_delivered() => {
                    Some(delivery.event_id.to_string())
                }
                _ => None,
            })
            .collect();
        self.acknowledged = acknowledged.len();
        let missing = acknowledged.difference(&inbox).map(|id| format!("event {id} acknowledged but not in the inbox"));
        self.lost.extend(missing);
        let unapplied: Vec<String> = sqlx::query_scalar("SELECT event_id FROM inbox WHERE processed_at IS NULL")
            .fetch_all(db)
            .await
            .expect("inbox");
        self.stuck.extend(unapplied.into_iter().map(|id| format!("event {id} never applied")));
    }

    /// Panics naming the first few problems of each kind, unless there are none.
    pub fn assert_all_good(&self) {
        let kinds =
            [("lost", &self.lost), ("duplicated", &self.duplicates), ("stuck", &self.stuck), ("wrong", &self.wrong)];
        let problems: Vec<String> = kinds
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(kind, list)| format!("{kind}: {}", list.iter().take(10).cloned().collect::<Vec<_>>().join("; ")))
            .collect();
        assert!(problems.is_empty(), "{}\n(database and log kept in {})", problems.join("\n"), self.dir.display());
    }
}

/// The one line of figures a run prints.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash-safety: kills={} calls={} lost={} duplicates={} final={} stuck={} wrong={} undialed={} \
             webhooks_acknowledged={} events_replayed={} dials_resent={} posts_retried={}",
            self.kills,
            self.calls,
            self.lost.len(),
            self.duplicates.len(),
            self.final_calls,
            self.stuck.len(),
            self.wrong.len(),
            self.undialed,
            self.acknowledged,
            self.replayed_events,
            self.resent_dials,
            self.retried_posts,
        )
    }
}

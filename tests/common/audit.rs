//! Judging a run from the service's database and the simulator's own records (what it placed,
//! what it delivered), never from what the service says of itself: every accepted call stored
//! once and final, placed by the simulator at most once (exactly once when it got anywhere) with
//! the outcome its callee leads to, and every webhook the service acknowledged in its inbox and
//! applied. The same judgement serves one instance over SQLite and a cluster over PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use dialajoke::domain::CallStatus;
use sqlx::{PgPool, SqlitePool};
use telnyx_sim::{Behaviour, CallSnapshot, JournalEntry, SimHandle};

use crate::poll::poll_within;

/// A call the API accepted, and what its callee does.
#[derive(Debug, Clone)]
pub struct AcceptedCall {
    /// Its id.
    pub id: String,
    /// What the callee does.
    pub behaviour: Behaviour,
}

/// What the database holds.
#[derive(Debug, Default)]
pub struct Stored {
    /// Every call's status and last error, by id.
    pub calls: HashMap<String, (CallStatus, Option<String>)>,
    /// Every recorded event id.
    pub inbox: HashSet<String>,
    /// The ids of events never applied.
    pub unapplied: Vec<String>,
    /// Dials sent again by whoever took them over.
    pub resent_dials: i64,
}

fn calls_of(rows: Vec<(String, String, Option<String>)>) -> HashMap<String, (CallStatus, Option<String>)> {
    rows.into_iter().map(|(id, status, error)| (id, (status.parse().expect("a known status"), error))).collect()
}

const RESENT: &str = "SELECT COUNT(*) FROM call_events WHERE kind = 'dial_resent'";
const UNAPPLIED: &str = "SELECT event_id FROM inbox WHERE processed_at IS NULL";

impl Stored {
    /// Reads a SQLite database.
    pub async fn read_sqlite(db: &SqlitePool) -> Self {
        let rows = sqlx::query_as("SELECT id, status, last_error FROM calls").fetch_all(db).await.expect("calls");
        let inbox = sqlx::query_scalar("SELECT event_id FROM inbox").fetch_all(db).await.expect("inbox");
        Self {
            calls: calls_of(rows),
            inbox: inbox.into_iter().collect(),
            unapplied: sqlx::query_scalar(UNAPPLIED).fetch_all(db).await.expect("inbox"),
            resent_dials: sqlx::query_scalar(RESENT).fetch_one(db).await.expect("count"),
        }
    }

    /// Reads a PostgreSQL database.
    pub async fn read_postgres(db: &PgPool) -> Self {
        let rows = sqlx::query_as("SELECT id::text, status, last_error FROM calls").fetch_all(db).await.expect("calls");
        let inbox = sqlx::query_scalar("SELECT event_id FROM inbox").fetch_all(db).await.expect("inbox");
        Self {
            calls: calls_of(rows),
            inbox: inbox.into_iter().collect(),
            unapplied: sqlx::query_scalar(UNAPPLIED).fetch_all(db).await.expect("inbox"),
            resent_dials: sqlx::query_scalar(RESENT).fetch_one(db).await.expect("count"),
        }
    }

    fn settled(&self, sim: &SimHandle) -> bool {
        self.calls.values().all(|(status, _)| status.is_terminal())
            && self.unapplied.is_empty()
            && sim.activity().is_idle()
    }
}

/// Reads the database with `read` until the run settled (every call final, every event applied,
/// the simulator idle) or `bound` passed; returns the last reading.
pub async fn settle<F, Fut>(sim: &SimHandle, bound: Duration, read: F) -> Stored
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Stored>,
{
    // Past the bound the last reading is returned all the same: the audit says what is wrong.
    let reading = poll_within(bound, || async {
        let stored = read().await;
        if stored.settled(sim) { Ok(stored) } else { Err(stored) }
    });
    let (Ok(stored) | Err(stored)) = reading.await;
    stored
}

/// The calls the simulator placed, by the call id our `client_state` carries.
pub fn placed_by_call(sim: &SimHandle) -> HashMap<String, Vec<CallSnapshot>> {
    let mut placed: HashMap<String, Vec<CallSnapshot>> = HashMap::new();
    for call in sim.calls() {
        let state = call.client_state.as_deref().expect("every dial carries client_state");
        let id = String::from_utf8(BASE64.decode(state).expect("base64")).expect("UTF-8");
        placed.entry(id).or_default().push(call);
    }
    placed
}

/// The final status the simulated callee leads to.
pub fn expected_status(behaviour: Behaviour) -> CallStatus {
    match behaviour {
        Behaviour::Answer | Behaviour::Machine | Behaviour::HangupMidJoke => CallStatus::Completed,
        Behaviour::Busy => CallStatus::Busy,
        Behaviour::NoAnswer => CallStatus::NoAnswer,
        Behaviour::Reject => CallStatus::Rejected,
    }
}

/// What went wrong in a run.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Calls in a final state at the end.
    pub final_calls: usize,
    /// Calls never dialed, failed with a reason (a dial Telnyx refused until retries ran out).
    pub undialed: usize,
    /// Webhook deliveries the service acknowledged with a 2xx.
    pub acknowledged: usize,
    /// Accepted calls missing from the database, and acknowledged events missing from the inbox.
    pub lost: Vec<String>,
    /// Calls the simulator placed more than once, and calls stored more than once.
    pub duplicates: Vec<String>,
    /// Calls not final at the end, and inbox events never applied.
    pub stuck: Vec<String>,
    /// Calls whose final state disagrees with what the simulator did.
    pub wrong: Vec<String>,
}

impl Verdict {
    /// Judges the run that accepted `accepted` from what is `stored` and what `sim` saw.
    pub fn judge(stored: &Stored, sim: &SimHandle, accepted: &[AcceptedCall]) -> Self {
        let mut verdict = Self::default();
        let placed = placed_by_call(sim);
        if stored.calls.len() > accepted.len() {
            verdict.duplicates.push(format!("{} calls stored for {} scheduled", stored.calls.len(), accepted.len()));
        }
        for call in accepted {
            let Some((status, error)) = stored.calls.get(&call.id) else {
                verdict.lost.push(format!("call {} accepted but not stored", call.id));
                continue;
            };
            let placed = placed.get(&call.id).map_or(&[][..], Vec::as_slice);
            verdict.judge_call(call, *status, error.as_deref(), placed);
        }
        verdict.judge_inbox(stored, sim);
        verdict
    }

    fn judge_call(&mut self, call: &AcceptedCall, status: CallStatus, error: Option<&str>, placed: &[CallSnapshot]) {
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

    fn judge_inbox(&mut self, stored: &Stored, sim: &SimHandle) {
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
        let missing =
            acknowledged.difference(&stored.inbox).map(|id| format!("event {id} acknowledged but not in the inbox"));
        self.lost.extend(missing);
        self.stuck.extend(stored.unapplied.iter().map(|id| format!("event {id} never applied")));
    }

    /// Panics naming the first few problems of each kind, unless there are none.
    pub fn assert_all_good(&self, kept: &Path) {
        let kinds =
            [("lost", &self.lost), ("duplicated", &self.duplicates), ("stuck", &self.stuck), ("wrong", &self.wrong)];
        let problems: Vec<String> = kinds
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(kind, list)| format!("{kind}: {}", list.iter().take(10).cloned().collect::<Vec<_>>().join("; ")))
            .collect();
        assert!(problems.is_empty(), "{}\n(logs kept in {})", problems.join("\n"), kept.display());
    }
}

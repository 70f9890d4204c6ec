//! What a cluster run measured, from the simulator's records (when each dial arrived, what it
//! carried, how long each call lasted) and the shared database (who claimed what, which dials were
//! taken over), never from what the instances say of themselves.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use telnyx_sim::{JournalEntry, RequestKind, SimHandle};

use crate::cluster::DueCall;

/// One Dial request as the simulator received it.
struct DialSeen {
    call: String,
    command_id: String,
    at: DateTime<Utc>,
}

fn dials_seen(sim: &SimHandle) -> Vec<DialSeen> {
    sim.journal()
        .into_iter()
        .filter_map(|entry| match entry {
            JournalEntry::Request(request) if request.kind == Some(RequestKind::Dial) => {
                let state = request.body["client_state"].as_str()?;
                let call = String::from_utf8(BASE64.decode(state).ok()?).ok()?;
                let command_id = request.body["command_id"].as_str()?.to_owned();
                Some(DialSeen { call, command_id, at: request.at })
            }
            _ => None,
        })
        .collect()
}

/// The figures of one run.
#[derive(Debug, Default)]
pub struct Figures {
    /// Calls scheduled.
    pub calls: usize,
    /// Instances in the cluster.
    pub instances: usize,
    /// Instances killed with SIGKILL.
    pub kills: usize,
    /// Dial requests the simulator received (resends of one dial included).
    pub dial_requests: usize,
    /// Calls whose dial went out under more than one command id (each would ring again).
    pub redialed: Vec<String>,
    /// Dials taken over from a dead instance and sent again with their command id.
    pub taken_over: i64,
    /// The earliest any call's first dial arrived, relative to its due time (negative: early).
    pub earliest: chrono::Duration,
    /// The latest any call's first dial arrived after its due time.
    pub worst_lateness: chrono::Duration,
    /// The most dials that arrived within any 1 s.
    pub peak_per_second: usize,
    /// The most dials that arrived within any pacing window.
    pub peak_per_window: usize,
    /// The pacing window.
    pub window: Duration,
    /// The most calls the simulator had going at once.
    pub peak_at_once: usize,
    /// Calls claimed per instance.
    pub claims: Vec<(String, i64)>,
    /// Requests HAProxy relayed to each instance (API calls and webhooks), by instance.
    pub relayed: Vec<(String, u64)>,
}

impl Figures {
    /// Measures a run that scheduled `calls`, with `window` as its pacing window.
    pub async fn measure(sim: &SimHandle, db: &PgPool, calls: &[DueCall], window: Duration) -> Self {
        let due: HashMap<&str, DateTime<Utc>> = calls.iter().map(|c| (c.call.id.as_str(), c.due)).collect();
        let dials = dials_seen(sim);
        let mut first: HashMap<&str, DateTime<Utc>> = HashMap::new();
        let mut command_ids: HashMap<&str, HashSet<&str>> = HashMap::new();
        for dial in &dials {
            first.entry(dial.call.as_str()).and_modify(|at| *at = (*at).min(dial.at)).or_insert(dial.at);
            command_ids.entry(dial.call.as_str()).or_default().insert(dial.command_id.as_str());
        }
        let lateness: Vec<chrono::Duration> =
            first.iter().filter_map(|(call, at)| due.get(call).map(|due| *at - *due)).collect();
        let claims: Vec<(String, i64)> = sqlx::query_as(
            "SELECT split_part(detail, 'by ', 2) AS owner, COUNT(*) FROM call_events WHERE kind = 'dialing' \
             GROUP BY owner ORDER BY owner",
        )
        .fetch_all(db)
        .await
        .expect("claims");
        Self {
            calls: calls.len(),
            dial_requests: dials.len(),
            redialed: command_ids.iter().filter(|(_, ids)| ids.len() > 1).map(|(call, _)| (*call).to_owned()).collect(),
            taken_over: sqlx::query_scalar("SELECT COUNT(*) FROM call_events WHERE kind = 'dial_resent'")
                .fetch_one(db)
                .await
                .expect("count"),
            earliest: lateness.iter().copied().min().unwrap_or_default(),
            worst_lateness: lateness.iter().copied().max().unwrap_or_default(),
            peak_per_second: sim.max_dials_in_window(Duration::from_secs(1)),
            peak_per_window: sim.max_dials_in_window(window),
            window,
            peak_at_once: peak_at_once(sim),
            claims,
            ..Self::default()
        }
    }
}

/// The most calls the simulator had between dial and hangup at any moment.
fn peak_at_once(sim: &SimHandle) -> usize {
    let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for call in sim.calls() {
        changes.push((call.started_at, 1));
        changes.push((call.ended_at.unwrap_or(DateTime::<Utc>::MAX_UTC), -1));
    }
    // Ends sort before starts at the same instant.
    changes.sort();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, change) in changes {
        now += change;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or_default()
}

/// The line of figures a run prints.
impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: chrono::Duration| d.num_milliseconds();
        let claims: Vec<String> = self.claims.iter().map(|(owner, n)| format!("{owner}:{n}")).collect();
        let relayed: Vec<String> = self.relayed.iter().map(|(name, n)| format!("{name}:{n}")).collect();
        write!(
            f,
            "calls={} instances={} kills={} dial_requests={} redialed={} taken_over={} earliest_ms={} \
             worst_lateness_ms={} peak_dials_1s={} peak_dials_{}s={} peak_calls_at_once={} claims=[{}] relayed=[{}]",
            self.calls,
            self.instances,
            self.kills,
            self.dial_requests,
            self.redialed.len(),
            self.taken_over,
            ms(self.earliest),
            ms(self.worst_lateness),
            self.peak_per_second,
            self.window.as_secs(),
            self.peak_per_window,
            self.peak_at_once,
            claims.join(" "),
            relayed.join(" "),
        )
    }
}

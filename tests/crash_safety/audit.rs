//! The end of a run: wait (bounded) until every call is final, the inbox is drained and the
//! simulator is idle, then judge it (see `common::audit`) and count what the kills cost.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use telnyx_sim::SimHandle;

use crate::common::audit::{Stored, Verdict, settle};
use crate::load::LoadOutcome;
use crate::service::Service;

/// Everything a run is judged by.
#[derive(Debug)]
pub struct Report {
    /// Kills the service came back from.
    pub kills: usize,
    /// Calls the API accepted.
    pub calls: usize,
    /// What went wrong.
    pub verdict: Verdict,
    /// Dials resent with their command id after a kill.
    pub resent_dials: i64,
    /// Events acknowledged before a kill and applied only after it, from the inbox.
    pub replayed_events: i64,
    /// Scheduling requests sent again because the service was down.
    pub retried_posts: usize,
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
    let stored = settle(sim, bound, || Stored::read_sqlite(&db)).await;
    let mut replayed_events = 0;
    for kill in kills {
        let at = kill.timestamp_millis();
        let replayed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE received_at < ? AND processed_at > ?")
            .bind(at)
            .bind(at)
            .fetch_one(&db)
            .await
            .expect("count");
        replayed_events += replayed;
    }
    Report {
        kills: kills.len(),
        calls: load.calls.len(),
        verdict: Verdict::judge(&stored, sim, &load.calls),
        resent_dials: stored.resent_dials,
        replayed_events,
        retried_posts: load.retried_posts,
        dir: service.dir().to_owned(),
    }
}

impl Report {
    /// Panics naming the first few problems of each kind, unless there are none.
    pub fn assert_all_good(&self) {
        self.verdict.assert_all_good(&self.dir);
    }
}

/// The one line of figures a run prints.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = &self.verdict;
        write!(
            f,
            "crash-safety: kills={} calls={} lost={} duplicates={} final={} stuck={} wrong={} undialed={} \
             webhooks_acknowledged={} events_replayed={} dials_resent={} posts_retried={}",
            self.kills,
            self.calls,
            verdict.lost.len(),
            verdict.duplicates.len(),
            verdict.final_calls,
            verdict.stuck.len(),
            verdict.wrong.len(),
            verdict.undialed,
            verdict.acknowledged,
            self.replayed_events,
            self.resent_dials,
            self.retried_posts,
        )
    }
}

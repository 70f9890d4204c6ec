//! A cluster on one machine: `dialajoke serve` processes over one fresh PostgreSQL database, the
//! Telnyx simulator in this test's process (so it outlives any instance), and HAProxy in front of
//! the instances (see `balancer.rs`). Every instance gives the balancer's URL as its public URL,
//! so the simulator's webhooks for any call land on any instance.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use telnyx_sim::{self as sim, Behaviour, SimConfig, SimHandle};

use crate::balancer::Balancer;
use crate::common::audit::AcceptedCall;
use crate::common::postgres::TestDatabase;
use crate::common::process::{ServiceProcess, free_port, simulator_account};
use crate::common::scheduling::{load_client, post_until_accepted};

/// The key the simulator accepts.
pub const API_KEY: &str = "cluster-key";
/// The simulator's signing seed; the instances are given its public key.
const SIGNING_SEED: [u8; 32] = [13; 32];
/// How many scheduling requests are in flight at once.
const POSTING_AT_ONCE: usize = 16;

/// A call scheduled through the cluster, with the instant it is due.
#[derive(Debug, Clone)]
pub struct DueCall {
    /// The call as the API accepted it.
    pub call: AcceptedCall,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// The running parts.
pub struct Cluster {
    /// The simulated Telnyx.
    pub sim: SimHandle,
    /// The instances, started or not.
    pub instances: Vec<ServiceProcess>,
    /// Spreads requests over the live instances.
    pub balancer: Balancer,
    /// The shared database, for judging the run.
    pub db: PgPool,
    /// Where the instances' logs are (kept when a test fails).
    pub dir: PathBuf,
    _database: TestDatabase,
}

/// A simulator whose calls are quick and whose webhooks are retried for about two minutes, as
/// Telnyx does, which outlasts any instance's death.
pub fn simulator_config() -> SimConfig {
    let mut config = SimConfig::local(API_KEY);
    config.signing_seed = Some(SIGNING_SEED);
    config.timing.delivery_attempts = 10;
    config.timing.first_retry = Duration::from_millis(250);
    config
}

impl Cluster {
    /// Starts the simulator and HAProxy, and prepares one instance per entry of
    /// `instances` (its name and its own settings) on top of the settings `shared`, not started.
    pub async fn new(
        server: &str,
        sim: SimConfig,
        shared: &[(&'static str, String)],
        instances: &[(&str, Vec<(&'static str, String)>)],
    ) -> Self {
        let database = TestDatabase::create(server).await;
        let sim = sim::start(sim).await.expect("simulator starts");
        let ports: Vec<u16> = instances.iter().map(|_| free_port()).collect();
        let dir = tempfile::Builder::new().prefix("dialajoke-cluster-").tempdir().expect("temp dir").keep();
        let servers: Vec<(&str, u16)> = instances.iter().map(|(name, _)| *name).zip(ports.iter().copied()).collect();
        let balancer = Balancer::start(&dir, &servers).await;
        let processes = instances
            .iter()
            .zip(ports)
            .map(|((name, own), port)| {
                let mut env = simulator_account(&sim, API_KEY);
                env.push(("DIALAJOKE_DATABASE_URL", database.url.clone()));
                env.push(("DIALAJOKE_PUBLIC_URL", format!("http://{}", balancer.addr())));
                env.push(("DIALAJOKE_INSTANCE_ID", (*name).to_owned()));
                env.extend(shared.iter().cloned());
                env.extend(own.iter().cloned());
                ServiceProcess::new(env!("CARGO_BIN_EXE_dialajoke"), name, &dir, port, env)
            })
            .collect();
        let db = PgPoolOptions::new().max_connections(2).connect(&database.url).await.expect("database opens");
        Self { sim, instances: processes, balancer, db, dir, _database: database }
    }

    /// Starts every instance (one after the other: the first creates the schema).
    pub async fn start_all(&mut self) {
        for instance in &mut self.instances {
            instance.start().await;
        }
    }

    /// The balancer's URL, which clients and Telnyx use.
    pub fn base(&self) -> String {
        format!("http://{}", self.balancer.addr())
    }

    /// Schedules `count` calls to the `behaviour` test number through the balancer, the n-th due
    /// at `first_due` plus n/count of `spread`; returns them once all are accepted.
    pub async fn schedule(
        &self,
        count: usize,
        behaviour: Behaviour,
        first_due: DateTime<Utc>,
        spread: Duration,
    ) -> Vec<DueCall> {
        schedule_at(self.base(), count, behaviour, first_due, spread).await
    }

    /// Like [`Cluster::schedule`], straight to the instance at `index` instead of the balancer.
    pub async fn schedule_on(
        &self,
        index: usize,
        count: usize,
        behaviour: Behaviour,
        first_due: DateTime<Utc>,
        spread: Duration,
    ) -> Vec<DueCall> {
        schedule_at(self.instances[index].base(), count, behaviour, first_due, spread).await
    }

    /// Where the logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops everything and removes the logs (only called once every check passed).
    pub async fn finish(mut self) {
        self.instances.iter_mut().for_each(ServiceProcess::kill);
        self.balancer.stop();
        self.sim.stop().await;
        std::fs::remove_dir_all(&self.dir).expect("logs removed");
    }
}

/// Posts the calls of [`Cluster::schedule`] to `base`, several at a time.
async fn schedule_at(
    base: String,
    count: usize,
    behaviour: Behaviour,
    first_due: DateTime<Utc>,
    spread: Duration,
) -> Vec<DueCall> {
    let http = load_client();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let due = |index: usize| {
        first_due + chrono::Duration::from_std(spread.mul_f64(index as f64 / count as f64)).expect("short")
    };
    let mut posting = tokio::task::JoinSet::new();
    for worker in 0..POSTING_AT_ONCE {
        let (http, base, run) = (http.clone(), base.clone(), run.clone());
        let mine: Vec<(usize, DateTime<Utc>)> = (worker..count).step_by(POSTING_AT_ONCE).map(|i| (i, due(i))).collect();
        posting.spawn(async move {
            let mut accepted = Vec::with_capacity(mine.len());
            for (index, due) in mine {
                let (id, _) = post_until_accepted(&http, &base, &format!("{run}-{index}"), behaviour, due).await;
                accepted.push(DueCall { call: AcceptedCall { id, behaviour }, due });
            }
            accepted
        });
    }
    posting.join_all().await.into_iter().flatten().collect()
}

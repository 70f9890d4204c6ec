//! The simulator's shared state, one per run: configuration, calls, journal, faults, signing
//! key, and the background tasks (call steps, webhook workers) that stop with the run.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::activity::ActivityTracker;
use crate::behaviour::Behaviours;
use crate::config::{SimConfig, Timing};
use crate::faults::FaultState;
use crate::journal::Journal;
use crate::pacing::Pacing;
use crate::registry::Registry;
use crate::signing::Signer;

pub(crate) struct Core {
    pub(crate) api_key: String,
    pub(crate) default_webhook_url: Option<String>,
    pub(crate) timing: Timing,
    pub(crate) signer: Signer,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) journal: Journal,
    pub(crate) pacing: Pacing,
    pub(crate) faults: FaultState,
    pub(crate) behaviours: Behaviours,
    pub(crate) activity: Arc<ActivityTracker>,
    /// Client for webhook deliveries; never goes through a proxy (receivers are local).
    pub(crate) http: reqwest::Client,
    /// The runtime that started the simulator: call steps and deliveries run there, not on
    /// the HTTP server's worker threads, so they outlive any one request.
    runtime: Handle,
    /// Set once when the run stops; every background task selects on it.
    stopping: watch::Sender<bool>,
}

impl Core {
    /// Builds the state for `config`; must be called inside a Tokio runtime.
    pub(crate) fn new(config: SimConfig) -> io::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.timing.webhook_timeout)
            .build()
            .map_err(io::Error::other)?;
        Ok(Self {
            api_key: config.api_key,
            default_webhook_url: config.default_webhook_url,
            signer: Signer::new(config.signing_seed),
            registry: Mutex::new(Registry::default()),
            journal: Journal::default(),
            pacing: Pacing::new(config.dial_limit),
            faults: FaultState::new(config.faults),
            behaviours: Behaviours::new(&config.behaviours),
            activity: Arc::new(ActivityTracker::new()),
            http,
            timing: config.timing,
            runtime: Handle::current(),
            stopping: watch::Sender::new(false),
        })
    }

    /// Runs `task` in the background until it finishes or the run stops.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut stopping = self.stopping.subscribe();
        self.runtime.spawn(async move {
            tokio::select! {
                () = task => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
        });
    }

    /// Ends every background task.
    pub(crate) fn stop_tasks(&self) {
        self.stopping.send_replace(true);
    }
}

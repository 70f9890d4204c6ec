//! A faithful simulator of the Telnyx Call Control v2 subset Dial-A-Joke uses, so the service
//! can run and be tested with no access to Telnyx. It serves the same paths with the same
//! validation and error shapes, plays calls out by destination number (answer, busy, no
//! answer, reject, voicemail, hang up mid-joke), delivers Ed25519-signed webhooks with
//! Telnyx-like retries, and injects faults on demand. It runs as the `telnyx-sim` binary
//! ([`serve`]) or inside a test ([`start`]). See `docs/simulator.md`.
//!
//! It is a crate of its own so that it answers to the official contract (the schemas and examples
//! in the repository's `tests/fixtures/telnyx`), never to the service's client: it does not
//! depend on the service, and the service's binary does not contain it or its admin API.

mod activity;
mod admin;
mod api;
mod behaviour;
mod call;
mod cli;
mod config;
mod core;
mod delivery;
mod emit;
mod errors;
mod events;
mod faults;
mod fields;
mod ids;
mod journal;
mod pacing;
mod registry;
mod signing;
mod validate;
mod view;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;

pub use activity::Activity;
pub use behaviour::{Behaviour, BehaviourParseError, NumberBehaviour, TEST_NUMBERS, test_number};
pub use cli::{FaultArgs, SimArgs, TimingProfile, serve};
pub use config::{DialLimit, SimConfig, Timing};
pub use faults::{ApiFault, ApiFaultKind, FaultTarget, Faults, WebhookFaults};
pub use ids::CallIds;
pub use journal::{DeliveryOutcome, DeliveryRecord, JournalEntry, RequestKind, RequestRecord};
pub use view::{CallSnapshot, CallState};

/// What can go wrong running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The HTTP server could not be started (address in use, …).
    #[error("could not start the simulator on {addr}")]
    Start {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file the simulator keeps could not be read or written.
    #[error("could not use {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The seed file does not hold base64 of 32 bytes.
    #[error("{path} does not hold a signing seed (base64 of 32 bytes)")]
    BadSeed {
        /// The file.
        path: PathBuf,
    },
    /// Ctrl-C could not be listened for.
    #[error("could not listen for Ctrl-C")]
    Signal(#[source] io::Error),
    /// The HTTP server stopped with an error.
    #[error("the simulator's HTTP server failed")]
    Server(#[source] io::Error),
    /// Work was still in progress when the wait ended.
    #[error("the simulator was still busy after {waited:?}: {activity:?}")]
    NotIdle {
        /// How long was waited.
        waited: Duration,
        /// What was left.
        activity: Activity,
    },
}

/// Binds, starts serving in the background and returns at once. Call inside a Tokio runtime:
/// call steps and webhook deliveries run on it.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    let listener = std::net::TcpListener::bind(config.bind)?;
    let addr = listener.local_addr()?;
    let core = Arc::new(core::Core::new(config)?);
    let data = web::Data::from(Arc::clone(&core));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(api::routes)
            .configure(admin::routes)
            .default_service(web::to(api::not_found))
    })
    .listen(listener)?
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .run();
    let server_handle = server.handle();
    Ok(SimHandle { core, addr, server: server_handle, serving: tokio::spawn(server) })
}

/// A running simulator.
pub struct SimHandle {
    core: Arc<core::Core>,
    addr: SocketAddr,
    server: ServerHandle,
    /// The HTTP server; finishes when stopped or when it fails.
    serving: JoinHandle<io::Result<()>>,
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the simulated API, e.g. `http://127.0.0.1:8090/v2`.
    pub fn api_base(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// The webhook signing public key: base64 of its 32 raw bytes.
    pub fn public_key_base64(&self) -> String {
        self.core.signer.public_key_base64()
    }

    /// Replaces the faults in force; counts and the random stream start over.
    pub fn set_faults(&self, faults: Faults) {
        self.core.faults.set(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.core.faults.current()
    }

    /// Makes the callee at `number` behave as `behaviour` for later dials.
    pub fn set_behaviour(&self, number: impl Into<String>, behaviour: Behaviour) {
        self.core.behaviours.set([(number.into(), behaviour)]);
    }

    /// Every API request received and every webhook delivery attempt so far, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.core.journal.entries()
    }

    /// How many requests of `kind` arrived (whatever they were answered).
    pub fn count_requests(&self, kind: RequestKind) -> usize {
        self.core.journal.count(kind)
    }

    /// The most Dial requests that arrived within any span of `window`.
    pub fn max_dials_in_window(&self, window: Duration) -> usize {
        self.core.pacing.max_in_window(window)
    }

    /// Every call placed so far, oldest first.
    pub fn calls(&self) -> Vec<CallSnapshot> {
        self.core.calls()
    }

    /// Live calls and pending deliveries right now.
    pub fn activity(&self) -> Activity {
        self.core.activity.current()
    }

    /// Waits until every call has ended and every webhook was delivered or given up.
    pub async fn wait_until_idle(&self, limit: Duration) -> Result<(), SimError> {
        self.core.activity.wait_idle(limit).await.map_err(|activity| SimError::NotIdle { waited: limit, activity })
    }

    /// Stops serving and ends every call step and delivery in progress.
    pub async fn stop(self) {
        self.core.stop_tasks();
        self.server.stop(false).await;
        match self.serving.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "simulator server ended with an error"),
            Err(error) => tracing::warn!(%error, "simulator server task failed"),
        }
    }
}

/// Locks a mutex even if a panicking thread poisoned it: the simulator's state stays usable
/// (each critical section leaves it consistent before anything can panic).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

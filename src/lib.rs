//! Dial-A-Joke: schedules phone calls that tell a joke, through the Telnyx Call Control API v2.
//!
//! The code is read top to bottom, and every import points down:
//!
//! ```text
//! web      the pages, the JSON API by resource (calls, rules) and face (api, pages), webhook
//!          intake, the live stream, health; the request guards and the one error mapping
//!   ▼
//! app      the calls and rules services, the call flow and its inbox, the timed queue, the
//!          materialiser, housekeeping
//!   ▼
//! store · telnyx · jokes · ngrok
//!          durable state (SQLite, PostgreSQL) · the Telnyx client and webhook types · the joke
//!          sources · the local ngrok agent; none of them knows the others
//!   ▼
//! config   the settings, read into domain values
//!   ▼
//! domain   values that can only be valid, the call and rule records, the state machine, calling
//!          hours, limits, policies, recurrence and a rule's next call: no I/O, no sqlx, no actix
//! ```
//!
//! A module may use its own layer and the ones below it, never one above nor a neighbour on its
//! own floor, and no modules import each other in a circle: `cargo test --lib layering` holds
//! the code to this. The Telnyx simulator is a crate of its own (`crates/telnyx-sim`) and
//! imports nothing of the service. This file wires the parts together and owns start-up and
//! graceful shutdown.

pub mod app;
pub mod config;
pub mod domain;
pub mod errors;
pub mod jokes;
#[cfg(test)]
mod layering;
pub mod ngrok;
pub mod store;
pub mod telnyx;
pub mod web;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web as actix};
use tokio_util::sync::CancellationToken;

use crate::app::calls::CallService;
use crate::app::flow::{CallFlow, FlowSettings};
use crate::app::housekeeping;
use crate::app::materialiser::Materialiser;
use crate::app::queue::{QueueSettings, TimedQueue};
use crate::app::rule_checks::{CheckPool, Probe};
use crate::app::rules::RuleService;
use crate::config::{Config, WebhookTrust};
use crate::domain::plan::PlanSettings;
use crate::domain::policy::Policy;
use crate::store::{CallLives, DialLimits, LeaseTerms, Sessions};
use crate::telnyx::client::{ClientConfig, TelnyxClient};
use crate::telnyx::signature::PublicKey;
use crate::web::AppState;

/// Logs to stderr, filtered by `RUST_LOG` (by default `info`, the database and scheduler
/// libraries quieter): for the `dialajoke` binary and the demo alike.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tokio_cron_scheduler=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// The configuration file to read: `given`, or else `./config.dev.json` when it exists.
pub fn config_file(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let default = PathBuf::from("config.dev.json");
        default.exists().then_some(default)
    })
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open database {url}")]
    Store {
        /// The URL (without credentials).
        url: String,
        /// Why.
        source: store::StoreError,
    },
    /// The Telnyx public key is not a valid key.
    #[error("configuration: TELNYX_PUBLIC_KEY is invalid")]
    PublicKey(#[source] telnyx::signature::SignatureError),
    /// The HTTP client could not be built.
    #[error("cannot build the Telnyx client")]
    Telnyx(#[from] telnyx::client::TelnyxError),
    /// No public URL was configured and none could be found.
    #[error(transparent)]
    PublicUrl(#[from] ngrok::NoTunnel),
    /// The templates do not parse (a build defect).
    #[error("the templates do not parse")]
    Templates(#[from] tera::Error),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The housekeeping scheduler could not start.
    #[error("cannot start the housekeeping jobs")]
    Housekeeping(#[from] tokio_cron_scheduler::JobSchedulerError),
}

/// What an embedder may plug into a built service to watch its insides (tests do; the service
/// itself plugs in nothing).
#[derive(Clone, Default)]
pub struct Probes {
    /// Called on the blocking pool as each new rule's occurrence check begins.
    pub rule_check: Option<Probe>,
}

/// A built service, listening, not yet serving.
pub struct Application {
    addr: SocketAddr,
    webhook_url: String,
    server: actix_web::dev::Server,
    queue: TimedQueue,
    flow: CallFlow,
    materialiser: Materialiser,
    /// Cancelled when a stop signal arrives, before the server drains (see [`AppState::closing`]).
    closing: CancellationToken,
    shutdown: CancellationToken,
    drain: Duration,
}

impl Application {
    /// Opens the store, builds every part and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listener =
            listen(config.server.bind).map_err(|source| StartError::Bind { addr: config.server.bind, source })?;
        Self::build_on(config, listener).await
    }

    /// Like [`Application::build`] on a listener the caller opened (tests bind port 0 first so
    /// they know the public URL before the service starts).
    pub async fn build_on(config: Config, listener: TcpListener) -> Result<Self, StartError> {
        Self::build_probed(config, listener, Probes::default()).await
    }

    /// Like [`Application::build_on`], with `probes` plugged in.
    pub async fn build_probed(config: Config, listener: TcpListener, probes: Probes) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.server.bind, source })?;
        let store = store::open(config.database_url.expose(), config.limits)
            .await
            .map_err(|source| StartError::Store { url: config.database_url.to_string(), source })?;
        let public_url = match &config.server.public_url {
            Some(url) => url.clone(),
            None => ngrok::public_url(ngrok::AGENT_URL).await?,
        };
        let webhook_url = format!("{public_url}/webhook");
        let flow = build_flow(&config, store.clone(), &webhook_url)?;
        let queue = TimedQueue::new(store.clone(), Arc::new(flow.clone()), queue_settings(&config));
        flow.wake_with(queue.downgrade());
        let plan = PlanSettings { grace: config.calls.grace, hours: config.calling_hours, quiet: config.quiet_action };
        let materialiser = Materialiser::new(store.clone(), queue.clone(), plan);
        let closing = CancellationToken::new();
        let secure_cookies = config.access.secure_cookies.for_public_url(&public_url);
        let forms_key = forms_key(&config, store.as_ref())
            .await
            .map_err(|source| StartError::Store { url: config.database_url.to_string(), source })?;
        let state = AppState {
            rules: RuleService::new(
                store.clone(),
                materialiser.clone(),
                policy(&config),
                CheckPool::new(CheckPool::default_size(), probes.rule_check),
            ),
            calls: CallService::new(store.clone(), queue.clone(), policy(&config)),
            flow: flow.clone(),
            webhook_key: webhook_key(&config)?,
            templates: web::templates::load()?,
            zone_names: chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect(),
            started_at: chrono::Utc::now(),
            api_base: web::health::without_credentials(&config.telnyx.api_base),
            closing: closing.clone(),
            access: web::auth::Access::new(
                config.access.api_token.clone(),
                store,
                config.access.session_ttl,
                secure_cookies,
            ),
            forms: web::csrf::Forms::new(forms_key, secure_cookies),
            hosts: web::hosts::AllowedHosts::new(addr, &public_url, &config.server.allowed_hosts),
            origins: web::origin::TrustedOrigins::new(&public_url, &config.server.cors_origins),
        };
        let server =
            serve(listener, actix::Data::new(state), &config).map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self {
            addr,
            webhook_url,
            server,
            queue,
            flow,
            materialiser,
            closing,
            shutdown: CancellationToken::new(),
            drain: config.server.shutdown_timeout,
        })
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server gracefully (what SIGTERM does), for tests and embedders.
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The URL Telnyx is told to send webhooks to.
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// Serves until SIGINT/SIGTERM (or the server is stopped), then drains in-flight work within
    /// the configured bound.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let housekeeper =
            housekeeping::start(self.flow.clone(), self.materialiser.clone()).await.map_err(std::io::Error::other)?;
        // Decide what rules make up after downtime, and take over the dials a previous run left
        // unfinished, before the queue claims anything: so a late rule call is settled by its
        // catch-up policy, and none of this run's own claims passes for an orphan. Only the store
        // is waited on here: resends and replayed webhook events run in the background, since
        // nothing is served until the server is awaited below and a slow Telnyx must hold up
        // neither it nor the queue.
        housekeeping::sweep(&self.flow, &self.materialiser, true).await;
        let queue = self.queue.clone();
        let (token, drain) = (self.shutdown.clone(), self.drain);
        let queue_task = tokio::spawn(async move { queue.run(token, drain).await });
        tracing::info!(addr = %self.addr, webhook_url = %self.webhook_url, "serving; set this webhook URL in the Telnyx portal");
        close_on_stop_signal(self.closing.clone());
        let served = self.server.await;
        self.closing.cancel();
        tracing::info!("shutting down: finishing in-flight dials and webhook events");
        self.shutdown.cancel();
        let mut housekeeper = housekeeper;
        let _ = housekeeper.shutdown().await;
        let _ = queue_task.await;
        self.flow.close(self.drain).await;
        served
    }
}

/// Cancels `closing` when SIGINT or SIGTERM arrives. The server hears the same signal and drains
/// its connections; the pages' live streams end on this token so that drain is not held up.
fn close_on_stop_signal(closing: CancellationToken) {
    tokio::spawn(async move {
        if let Err(error) = stop_signal().await {
            tracing::warn!(%error, "cannot listen for stop signals; live page streams close only when the server stops");
            return;
        }
        closing.cancel();
    });
}

#[cfg(unix)]
async fn stop_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stop_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

/// Opens the listening socket with SO_REUSEADDR, so a restart right after a crash can take the
/// same port back while the dead process's connections linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn build_flow(config: &Config, store: Arc<dyn CallLives>, webhook_url: &str) -> Result<CallFlow, StartError> {
    let mut client = ClientConfig::new(config.telnyx.api_base.clone(), config.telnyx.api_key.expose().to_owned());
    client.request_timeout = config.telnyx.timeout;
    let telnyx = TelnyxClient::new(client)?;
    let jokes = jokes::Jokes::new(config.calls.jokes_url.clone(), reqwest::Client::new());
    let settings = FlowSettings {
        connection_id: config.telnyx.connection_id.clone(),
        from: config.telnyx.from_number.clone(),
        webhook_url: webhook_url.to_owned(),
        voice: config.calls.voice.clone(),
        language: config.calls.language.clone(),
        ring_timeout_secs: config.calls.ring_timeout_secs,
        time_limit_secs: config.calls.time_limit_secs,
        lease: lease_terms(config),
        limits: dial_limits(config),
        machine: config.machine,
        retry: config.retry,
    };
    Ok(CallFlow::new(store, telnyx, jokes, settings))
}

fn policy(config: &Config) -> Policy {
    Policy {
        horizon: config.calls.horizon,
        countries: config.calls.allowed_countries.clone(),
        number_types: config.calls.allowed_number_types.clone(),
        limits: config.limits,
        hours: config.calling_hours,
    }
}

fn queue_settings(config: &Config) -> QueueSettings {
    QueueSettings {
        lease: lease_terms(config),
        grace: config.calls.grace.to_std().unwrap_or_default(),
        window: 10_000,
        batch: 500,
        limits: dial_limits(config),
        calling_hours: config.calling_hours,
        quiet: config.quiet_action,
    }
}

fn lease_terms(config: &Config) -> LeaseTerms {
    LeaseTerms { owner: config.server.instance_id.clone(), ttl: config.dialing.lease }
}

fn dial_limits(config: &Config) -> DialLimits {
    let rate = DialLimits::spread(config.dialing.limit, config.dialing.window);
    DialLimits { rate: Some(rate), max_active: config.dialing.max_active_calls }
}

/// The key of the forms' anti-forgery tokens: `DIALAJOKE_SECRET`, or else the secret kept in the
/// database (made by whichever instance started first), so every instance and every restart
/// signs alike.
async fn forms_key(config: &Config, store: &dyn Sessions) -> Result<Vec<u8>, store::StoreError> {
    match &config.access.secret {
        Some(secret) => Ok(secret.expose().as_bytes().to_vec()),
        None => store.server_secret(&web::csrf::fresh_key()).await,
    }
}

fn webhook_key(config: &Config) -> Result<Option<PublicKey>, StartError> {
    match &config.telnyx.webhooks {
        WebhookTrust::Signed(encoded) => PublicKey::from_base64(encoded).map(Some).map_err(StartError::PublicKey),
        WebhookTrust::Unsigned => {
            tracing::warn!(
                "DIALAJOKE_ALLOW_UNSIGNED_WEBHOOKS is on: webhook signatures are NOT checked (development only)"
            );
            Ok(None)
        }
    }
}

fn serve(
    listener: TcpListener,
    state: actix::Data<AppState>,
    config: &Config,
) -> std::io::Result<actix_web::dev::Server> {
    let origins = config.server.cors_origins.clone();
    // The last `wrap` is the outermost: every answer, refusals included, is formatted and carries
    // the security headers; a misdirected request goes no further; CORS answers preflights before
    // any check that wants credentials; bodies have their deadline before anything reads them.
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(web::auth::require_access))
            .wrap(from_fn(web::origin::refuse_cross_site))
            .wrap(from_fn(web::deadline::limit_body_time))
            .wrap(web::cors(&origins))
            .wrap(from_fn(web::hosts::check_host))
            .wrap(web::security_headers())
            .wrap(from_fn(web::problem::format_errors))
            .configure(web::configure(state.clone()))
    });
    if let Some(workers) = config.server.web_workers {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.shutdown_timeout(config.server.shutdown_timeout.as_secs()).run())
}

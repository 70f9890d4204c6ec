//! Shared test helpers, the library every test binary uses (crate `dialajoke-test-support`): a
//! real service on a random port with a real SQLite file in a temporary directory, wired over
//! real HTTP to the project's Telnyx simulator, plus one typed helper per endpoint.

pub mod audit;
pub mod backends;
pub mod flow;
pub mod poll;
pub mod postgres;
pub mod process;
pub mod scheduler;
pub mod scheduling;

use std::net::TcpListener;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use dialajoke::config::Config;
use dialajoke::telnyx::signature::Signer;
use dialajoke::{Application, Probes};
use serde_json::{Value, json};
use telnyx_sim::{self as sim, SimConfig, SimHandle};
use tempfile::TempDir;

/// The key the tests' simulator accepts.
pub const API_KEY: &str = "test-key";
/// The seed of the simulator's signing key, so tests can sign webhooks the service trusts.
pub const SIGNING_SEED: [u8; 32] = [7; 32];
/// The longest any call flow may take in the fast simulator before a test gives up.
pub const FLOW_BOUND: Duration = Duration::from_secs(20);

/// How a test wants the service and its simulator set up.
pub struct Options {
    /// The simulator's configuration.
    pub sim: SimConfig,
    /// Extra environment for the service's configuration (wins over the defaults here).
    pub env: Vec<(&'static str, String)>,
    /// What the test plugs into the service to watch it.
    pub probes: Probes,
}

impl Default for Options {
    fn default() -> Self {
        let mut sim = SimConfig::local(API_KEY);
        sim.signing_seed = Some(SIGNING_SEED);
        Self { sim, env: Vec::new(), probes: Probes::default() }
    }
}

/// A running service and its simulator.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    /// The Telnyx simulator the service talks to.
    pub sim: SimHandle,
    /// The SQLite database URL.
    pub db_url: String,
    env: Vec<(&'static str, String)>,
    probes: Probes,
    running: Option<Running>,
    _dir: TempDir,
}

struct Running {
    stop: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the simulator and the service with default options.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// Starts the simulator and the service.
pub async fn spawn_app_with(options: Options) -> TestApp {
    let sim = sim::start(options.sim).await.expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}", dir.path().join("test.db").display());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut app = TestApp {
        base: String::new(),
        http,
        sim,
        db_url,
        env: options.env,
        probes: options.probes,
        running: None,
        _dir: dir,
    };
    app.start().await;
    app
}

impl TestApp {
    fn config(&self, port: u16) -> Config {
        let mut env = vec![
            ("DIALAJOKE_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ("DIALAJOKE_DATABASE_URL", self.db_url.clone()),
            ("TELNYX_API_KEY", API_KEY.to_owned()),
            ("TELNYX_PUBLIC_KEY", self.sim.public_key_base64()),
            ("TELNYX_CONNECTION_ID", "test-connection".to_owned()),
            ("TELNYX_FROM_NUMBER", "+12025550199".to_owned()),
            ("TELNYX_API_BASE", self.sim.api_base()),
            ("DIALAJOKE_SHUTDOWN_SECS", "5".to_owned()),
            ("DIALAJOKE_ALLOWED_COUNTRIES", "US,IE".to_owned()),
            ("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "0".to_owned()),
            ("DIALAJOKE_LIMIT_PER_NUMBER_DAY", "0".to_owned()),
            ("DIALAJOKE_LIMIT_GLOBAL_HOUR", "0".to_owned()),
            ("DIALAJOKE_LIMIT_GLOBAL_DAY", "0".to_owned()),
            // Tests run at any hour of the day; those about calling hours and retries set their own.
            ("DIALAJOKE_CALLING_HOURS", "off".to_owned()),
            ("DIALAJOKE_RETRY_ATTEMPTS", "0".to_owned()),
        ];
        env.extend(self.env.iter().cloned());
        Config::from_sources(None, |name| env.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .expect("test configuration is valid")
    }

    /// Starts the service (again) on a fresh port over the same database.
    pub async fn start(&mut self) {
        self.start_on(TcpListener::bind("127.0.0.1:0").expect("free port")).await;
    }

    /// Starts the service again on the port it had before it was stopped, as an operator's
    /// restart would (Telnyx keeps delivering to the same URL).
    pub async fn start_on_same_port(&mut self) {
        let addr: std::net::SocketAddr = self.base.trim_start_matches("http://").parse().expect("address");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        // Connections the old server closed linger in TIME_WAIT on this port.
        socket.set_reuse_address(true).expect("reuse");
        socket.bind(&addr.into()).expect("same port is free again");
        socket.listen(128).expect("listen");
        self.start_on(socket.into()).await;
    }

    async fn start_on(&mut self, listener: TcpListener) {
        let port = listener.local_addr().expect("address").port();
        let app =
            Application::build_probed(self.config(port), listener, self.probes.clone()).await.expect("service starts");
        self.base = format!("http://127.0.0.1:{port}");
        let stop = app.stop_handle();
        let task = tokio::spawn(app.run_until_stopped());
        self.running = Some(Running { stop, task });
    }

    /// Stops the service gracefully, as SIGTERM would, and waits for it to finish.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.stop(true).await;
            running.task.await.expect("service task").expect("service stopped cleanly");
        }
    }

    /// Stops and starts the service over the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// `POST /api/calls` with a JSON body.
    pub async fn post_call(&self, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}/api/calls", self.base)).json(body).send().await.expect("request sent")
    }

    /// Schedules a call to `to` due `after` from now; returns the created call.
    pub async fn schedule_in(&self, to: &str, after: Duration) -> Value {
        let response = self.post_call(&json!({ "to": to, "at": at_in(after) })).await;
        assert_eq!(response.status(), 201, "scheduling failed");
        response.json().await.expect("call JSON")
    }

    /// `GET /api/calls/{id}`.
    pub async fn call(&self, id: &str) -> Value {
        let response = self.http.get(format!("{}/api/calls/{id}", self.base)).send().await.expect("request sent");
        assert_eq!(response.status(), 200);
        response.json().await.expect("call JSON")
    }

    /// `POST /api/schedules` with a JSON body.
    pub async fn post_schedule(&self, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}/api/schedules", self.base)).json(body).send().await.expect("request sent")
    }

    /// `GET /api/schedules/{id}`.
    pub async fn schedule(&self, id: &str) -> reqwest::Response {
        self.http.get(format!("{}/api/schedules/{id}", self.base)).send().await.expect("request sent")
    }

    /// Every call the API lists (up to 200), newest first.
    pub async fn all_calls(&self) -> Vec<Value> {
        let url = format!("{}/api/calls?limit=200", self.base);
        let listing: Value = self.http.get(url).send().await.expect("request sent").json().await.expect("listing");
        listing["calls"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the call (bounded by [`FLOW_BOUND`]) until its status is terminal.
    pub async fn wait_until_final(&self, id: &str) -> Value {
        self.wait_for(id, |call| is_final(&call["status"])).await
    }

    /// Polls the call (bounded by [`FLOW_BOUND`]) until `done` holds.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        poll::poll_until("the call got there", FLOW_BOUND, || async {
            let call = self.call(id).await;
            if done(&call) { Ok(call) } else { Err(call) }
        })
        .await
    }

    /// The kinds of a call's history entries, in order.
    pub fn event_kinds(call: &Value) -> Vec<String> {
        call["events"].as_array().map_or_else(Vec::new, |events| {
            events.iter().filter_map(|e| e["kind"].as_str().map(str::to_owned)).collect()
        })
    }

    /// `POST /webhook` with `body` as JSON and the headers Telnyx sets, signed by `signer` at
    /// `timestamp` (Unix seconds).
    pub async fn post_webhook_signed_by(&self, signer: &Signer, timestamp: i64, body: Vec<u8>) -> reqwest::Response {
        let signature = signer.sign(timestamp, &body);
        self.http
            .post(format!("{}/webhook", self.base))
            .body(body)
            .header("content-type", "application/json")
            .header("telnyx-timestamp", timestamp.to_string())
            .header("telnyx-signature-ed25519", signature)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /webhook` with `body` signed now by the key the service trusts.
    pub async fn post_webhook(&self, body: Vec<u8>) -> reqwest::Response {
        self.post_webhook_signed_by(&Signer::from_seed(&SIGNING_SEED), Utc::now().timestamp(), body).await
    }

    /// Opens the service's database for assertions on what was stored.
    pub async fn db(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&self.db_url).await.expect("database opens")
    }

    /// How many rows a table holds.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(&sql).fetch_one(&self.db().await).await.expect("count")
    }
}

/// The official example of webhook `name` (e.g. `call.answered`) with its own fresh `data.id`,
/// after `edit` has changed it further; returns the id and the body.
pub fn webhook_event(name: &str, edit: impl FnOnce(&mut Value)) -> (String, Vec<u8>) {
    let path = format!("{}/../../tests/fixtures/telnyx/examples/webhook.{name}.json", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut body: Value = serde_json::from_slice(&bytes).expect("example is JSON");
    let id = uuid::Uuid::new_v4().to_string();
    body["data"]["id"] = Value::String(id.clone());
    edit(&mut body);
    (id, serde_json::to_vec(&body).expect("serializable"))
}

/// An RFC 3339 instant `after` from now.
pub fn at_in(after: Duration) -> String {
    (Utc::now() + chrono::Duration::from_std(after).expect("small duration"))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// True for the terminal statuses.
pub fn is_final(status: &Value) -> bool {
    matches!(status.as_str(), Some("completed" | "busy" | "no_answer" | "rejected" | "failed" | "cancelled" | "missed"))
}

/// A year safely in the future (the tests that use it allow a ten-year horizon).
pub fn future_year() -> i32 {
    use chrono::Datelike;
    Utc::now().year() + 2
}

/// The last Sunday of `month` in `year` (EU clocks change on the last Sundays of March and October).
pub fn last_sunday(year: i32, month: u32) -> String {
    use chrono::{Datelike, NaiveDate, Weekday};
    let first_of_next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) }
            .expect("valid date");
    let mut day = first_of_next.pred_opt().expect("valid date");
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt().expect("valid date");
    }
    day.format("%Y-%m-%d").to_string()
}

/// Options allowing calls up to ten years ahead.
pub fn ten_year_horizon() -> Options {
    Options { env: vec![("DIALAJOKE_HORIZON_DAYS", "3650".to_owned())], ..Options::default() }
}

/// Polls `done` (bounded by [`FLOW_BOUND`]) until it holds.
pub async fn wait_until(what: &str, done: impl Fn() -> bool) {
    poll::poll_until(what, FLOW_BOUND, || async { if done() { Ok(()) } else { Err(()) } }).await
}

/// Reads one HTTP response from a raw connection: the status code, the head in lower case, and
/// the body (as long as its `content-length` says).
async fn read_response(stream: &mut tokio::net::tcp::OwnedReadHalf) -> (u16, String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.expect("response readable");
        bytes.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse().expect("length"));
            if bytes.len() >= end + 4 + length || read == 0 {
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
                return (status, head, bytes[end + 4..].to_vec());
            }
        }
        assert!(read > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&bytes));
    }
}

/// Opens a connection, sends the head of `POST path` with `headers` (each `name: value`) and the
/// body's length, then the body one byte every `pace`; returns what the service answered and
/// when, from the end of the head.
pub async fn post_trickled(
    app: &TestApp,
    path: &str,
    headers: &[String],
    body: Vec<u8>,
    pace: Duration,
) -> ((u16, String, Vec<u8>), Duration) {
    use tokio::io::AsyncWriteExt;
    let addr = app.base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let (mut reader, mut writer) = stream.into_split();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\n{extra}content-length: {}\r\n\r\n", body.len());
    writer.write_all(head.as_bytes()).await.expect("head sent");
    let started = tokio::time::Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in body {
            // The service may have given up on us: stop writing then.
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(pace).await;
        }
    });
    let response = read_response(&mut reader).await;
    let elapsed = started.elapsed();
    trickle.abort();
    (response, elapsed)
}

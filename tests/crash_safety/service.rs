//! The service under test as a real operating-system process: the `dialajoke serve` binary with
//! its settings in the environment, a SQLite file and a log in its own directory, listening on the
//! same port across restarts so the simulator keeps delivering to the same webhook URL.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dialajoke::sim::SimHandle;

/// How long a (re)started service may take to answer `/ready`.
const READY_BOUND: Duration = Duration::from_secs(30);

/// A `dialajoke serve` process that can be killed and started again over the same database.
pub struct Service {
    dir: PathBuf,
    port: u16,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Service {
    /// Prepares a service talking to `sim`, in a fresh directory that is kept if the test fails.
    pub fn new(sim: &SimHandle, api_key: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("dialajoke-crash-").tempdir().expect("temp dir").keep();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let env = vec![
            ("DIALAJOKE_BIND", format!("127.0.0.1:{port}")),
            ("DIALAJOKE_PUBLIC_URL", base),
            ("DIALAJOKE_DATABASE_URL", format!("sqlite://{}", dir.join("crash.db").display())),
            ("TELNYX_API_KEY", api_key.to_owned()),
            ("TELNYX_PUBLIC_KEY", sim.public_key_base64()),
            ("TELNYX_CONNECTION_ID", "crash-connection".to_owned()),
            ("TELNYX_FROM_NUMBER", "+12025550199".to_owned()),
            ("TELNYX_API_BASE", sim.api_base()),
            ("DIALAJOKE_ALLOWED_COUNTRIES", "US".to_owned()),
            // The load sends hundreds of calls to the same few test numbers.
            ("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "0".to_owned()),
            ("DIALAJOKE_LIMIT_PER_NUMBER_DAY", "0".to_owned()),
            ("DIALAJOKE_LIMIT_GLOBAL_HOUR", "0".to_owned()),
            ("DIALAJOKE_LIMIT_GLOBAL_DAY", "0".to_owned()),
            // The run happens at any hour, and its audit expects one call per request made.
            ("DIALAJOKE_CALLING_HOURS", "off".to_owned()),
            ("DIALAJOKE_RETRY_ATTEMPTS", "0".to_owned()),
            ("RUST_LOG", "info,sqlx=warn,tokio_cron_scheduler=warn".to_owned()),
        ];
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("client");
        Self { dir, port, env, child: None, http }
    }

    /// `http://127.0.0.1:PORT`, the same on every start.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The SQLite URL the service uses.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("crash.db").display())
    }

    /// Where the database and the log are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the process and waits until it answers `/ready`.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the service is already running");
        let log = self.log_file();
        let child = Command::new(env!("CARGO_BIN_EXE_dialajoke"))
            .arg("serve")
            .env_clear()
            .envs(self.env.iter().cloned())
            // Away from the repository, so no config.dev.json is read: only the environment counts.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("the service binary starts");
        self.child = Some(child);
        self.wait_until_ready().await;
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL delivered");
            child.wait().expect("killed process reaped");
        }
    }

    /// Stops the service and removes its directory (only called once every check passed).
    pub fn finish(mut self) {
        self.kill();
        std::fs::remove_dir_all(&self.dir).expect("test directory removed");
    }

    fn log_file(&self) -> File {
        OpenOptions::new().create(true).append(true).open(self.dir.join("service.log")).expect("log file opens")
    }

    async fn wait_until_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + READY_BOUND;
        let url = format!("{}/ready", self.base());
        loop {
            if self.http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("process status")) {
                panic!("the service exited with {status}; see {}", self.dir.join("service.log").display());
            }
            assert!(tokio::time::Instant::now() < deadline, "the service was not ready within {READY_BOUND:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A failed assertion must not leave the process running.
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("address").port()
}

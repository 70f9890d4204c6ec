//! The service as a real operating-system process: the `dialajoke serve` binary with its settings
//! in the environment and its log in a directory of its own, listening on the same port across
//! restarts so the simulator keeps delivering to the same webhook URL, and killed with SIGKILL
//! (no shutdown of any kind) when a test wants it dead.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use telnyx_sim::SimHandle;

use crate::poll::poll_until;

/// How long a (re)started service may take to answer `/ready`.
const READY_BOUND: Duration = Duration::from_secs(30);

/// The settings every service under test shares: the simulator's account and API, the US
/// callees, and no scheduling limits (loads send hundreds of calls to the same few numbers).
pub fn simulator_account(sim: &SimHandle, api_key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TELNYX_API_KEY", api_key.to_owned()),
        ("TELNYX_PUBLIC_KEY", sim.public_key_base64()),
        ("TELNYX_CONNECTION_ID", "test-connection".to_owned()),
        ("TELNYX_FROM_NUMBER", "+12025550199".to_owned()),
        ("TELNYX_API_BASE", sim.api_base()),
        ("DIALAJOKE_ALLOWED_COUNTRIES", "US".to_owned()),
        ("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "0".to_owned()),
        ("DIALAJOKE_LIMIT_PER_NUMBER_DAY", "0".to_owned()),
        ("DIALAJOKE_LIMIT_GLOBAL_HOUR", "0".to_owned()),
        ("DIALAJOKE_LIMIT_GLOBAL_DAY", "0".to_owned()),
        // The runs happen at any hour, and their audits expect one call per request made.
        ("DIALAJOKE_CALLING_HOURS", "off".to_owned()),
        ("DIALAJOKE_RETRY_ATTEMPTS", "0".to_owned()),
        ("RUST_LOG", "info,sqlx=warn,tokio_cron_scheduler=warn".to_owned()),
    ]
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("address").port()
}

/// A `dialajoke serve` process that can be killed and started again.
pub struct ServiceProcess {
    dir: PathBuf,
    /// The `dialajoke` binary (a test binary's `env!("CARGO_BIN_EXE_dialajoke")`).
    binary: &'static str,
    name: String,
    port: u16,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    http: reqwest::Client,
}

impl ServiceProcess {
    /// The `binary` as a service named `name` on `port` with the settings `env`, logging into
    /// `dir` (`NAME.log`), not started yet.
    pub fn new(binary: &'static str, name: &str, dir: &Path, port: u16, env: Vec<(&'static str, String)>) -> Self {
        let mut env = env;
        env.push(("DIALAJOKE_BIND", format!("127.0.0.1:{port}")));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("client");
        Self { dir: dir.to_owned(), binary, name: name.to_owned(), port, env, child: None, http }
    }

    /// `http://127.0.0.1:PORT`, the same on every start.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// Starts the process and waits until it answers `/ready`.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = self.log_file();
        let child = Command::new(self.binary)
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

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL delivered");
            child.wait().expect("killed process reaped");
        }
    }

    fn log_file(&self) -> File {
        OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file opens")
    }

    async fn wait_until_ready(&mut self) {
        let url = format!("{}/ready", self.base());
        let (name, log) = (&self.name.clone(), &self.log_path());
        let what = format!("{name} was ready");
        poll_until(&what, READY_BOUND, || {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().expect("process status"));
            let ready = self.http.get(&url).send();
            async move {
                if let Some(status) = exited {
                    panic!("{name} exited with {status}; see {}", log.display());
                }
                match ready.await {
                    Ok(answer) if answer.status().is_success() => Ok(()),
                    Ok(answer) => Err(answer.status().to_string()),
                    Err(error) => Err(error.to_string()),
                }
            }
        })
        .await;
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A failed assertion must not leave the process running.
        self.kill();
    }
}

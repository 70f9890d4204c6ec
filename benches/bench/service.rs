//! The service under test as its own process: the release `dialajoke` binary, started with a
//! configuration in its environment and a working directory of its own, timed from spawn to
//! `/ready`, its memory read from /proc, stopped with SIGTERM.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use telnyx_sim::SimHandle;

/// The key the bench's simulators accept.
pub const API_KEY: &str = "bench-key";

/// A running `dialajoke serve`.
pub struct Service {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From spawn to the first `200` from `/ready`.
    pub ready_after: Duration,
}

/// How to start one.
pub struct Launch<'a> {
    /// The SQLite file.
    pub database: &'a Path,
    /// The simulator standing in for Telnyx.
    pub telnyx: &'a SimHandle,
    /// The key webhooks are signed with (base64), when not the simulator's.
    pub public_key: Option<String>,
    /// Settings on top of the bench's defaults.
    pub env: Vec<(&'static str, String)>,
    /// Where the service's log goes.
    pub log: PathBuf,
}

/// A free loopback port (the service binds it a moment later).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

impl Service {
    /// Starts the binary and waits until it answers `/ready`.
    pub async fn start(launch: Launch<'_>) -> Service {
        let addr = free_addr();
        let workdir = launch.database.parent().expect("database directory");
        let log = std::fs::File::create(&launch.log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dialajoke"));
        command
            .arg("serve")
            .current_dir(workdir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DIALAJOKE_BIND", addr.to_string())
            .env("DIALAJOKE_PUBLIC_URL", format!("http://{addr}"))
            .env("DIALAJOKE_DATABASE_URL", format!("sqlite://{}", launch.database.display()))
            .env("TELNYX_API_KEY", API_KEY)
            .env("TELNYX_PUBLIC_KEY", launch.public_key.unwrap_or_else(|| launch.telnyx.public_key_base64()))
            .env("TELNYX_CONNECTION_ID", "bench-connection")
            .env("TELNYX_FROM_NUMBER", "+12025550199")
            .env("TELNYX_API_BASE", launch.telnyx.api_base())
            .env("DIALAJOKE_ALLOWED_COUNTRIES", "US")
            // Load at any hour: quiet hours would refuse or move the bench's calls at night.
            .env("DIALAJOKE_CALLING_HOURS", "off")
            .envs(launch.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let spawned = Instant::now();
        let child = command.spawn().expect("the dialajoke binary starts");
        let ready_after = wait_ready(addr, spawned).await;
        Service { child, addr, ready_after }
    }

    /// Resident memory now and at its peak, in KiB.
    pub fn memory_kib(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .expect("a memory figure")
        };
        Memory { rss_kib: field("VmRSS:"), peak_kib: field("VmHWM:") }
    }

    /// Stops it as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        let status = self.child.wait().expect("the service exits");
        assert!(status.success(), "the service stopped cleanly: {status}");
    }
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmRSS.
    pub rss_kib: u64,
    /// VmHWM: the most it held so far.
    pub peak_kib: u64,
}

async fn wait_ready(addr: SocketAddr, spawned: Instant) -> Duration {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/ready");
    loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            return spawned.elapsed();
        }
        assert!(spawned.elapsed() < Duration::from_secs(60), "the service did not get ready within 60 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

//! HAProxy in front of the cluster's instances, run with `docs/haproxy.cfg` exactly as the README
//! shows it plus one `server` line per instance: round-robin, instances checked on `/ready`, the
//! Host header passed through. Its stats page says how many requests each instance answered.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::poll::poll_until;
use crate::common::process::free_port;

/// Where Debian's `haproxy` package puts the binary (`make balancer-deps` installs it).
const HAPROXY: &str = "/usr/sbin/haproxy";
/// The configuration `make cluster` and these tests run, and the README shows.
pub const CONFIG: &str = include_str!("../../docs/haproxy.cfg");
/// The backend section the `server` lines are appended to.
const BACKEND: &str = "instances";
/// How long HAProxy may take to listen.
const START_BOUND: Duration = Duration::from_secs(10);

/// A running HAProxy, killed when dropped.
pub struct Balancer {
    addr: SocketAddr,
    stats: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
}

/// The configuration with a `server` line for each (name, port) on 127.0.0.1.
fn with_servers(instances: &[(&str, u16)]) -> String {
    let servers: String =
        instances.iter().map(|(name, port)| format!("    server {name} 127.0.0.1:{port}\n")).collect();
    format!("{CONFIG}{servers}")
}

fn loopback(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

impl Balancer {
    /// Writes the configuration into `dir` and starts HAProxy on a free port in front of
    /// `instances` (name and port), logging to `dir/haproxy.log`; returns once it listens.
    pub async fn start(dir: &Path, instances: &[(&str, u16)]) -> Self {
        assert!(
            Path::new(HAPROXY).exists(),
            "the cluster tests run HAProxy as their load balancer, and {HAPROXY} is missing: \
             install it with `make balancer-deps` (the Debian package haproxy)"
        );
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, with_servers(instances)).expect("HAProxy configuration written");
        let (addr, stats) = (loopback(free_port()), loopback(free_port()));
        let log = dir.join("haproxy.log");
        let output = File::create(&log).expect("HAProxy log opens");
        let child = Command::new(HAPROXY)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .env("DIALAJOKE_BALANCER_BIND", addr.to_string())
            .env("DIALAJOKE_BALANCER_STATS", stats.to_string())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log handle"))
            .stderr(output)
            .spawn()
            .expect("HAProxy starts");
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("client");
        let mut balancer = Self { addr, stats, log, child: Some(child), http };
        balancer.wait_until_listening().await;
        balancer
    }

    /// The address clients and the simulator's webhooks use.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests each instance answered so far, by its name, in the configuration's order.
    pub async fn answered(&self) -> Vec<(String, u64)> {
        let csv = self.stats_csv().await.expect("HAProxy's stats answer");
        answered_by_server(&csv)
    }

    /// Stops HAProxy.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("HAProxy killed");
            child.wait().expect("HAProxy reaped");
        }
    }

    async fn stats_csv(&self) -> Result<String, reqwest::Error> {
        let url = format!("http://{}/stats;csv", self.stats);
        self.http.get(url).send().await?.error_for_status()?.text().await
    }

    async fn wait_until_listening(&mut self) {
        let (url, log) = (&format!("http://{}/stats;csv", self.stats), &self.log.clone());
        poll_until("HAProxy listened", START_BOUND, || {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().expect("HAProxy's status"));
            let stats = self.http.get(url).send();
            async move {
                if let Some(status) = exited {
                    panic!("HAProxy exited with {status}; see {}", log.display());
                }
                stats.await.and_then(reqwest::Response::error_for_status).map(drop).map_err(|e| e.to_string())
            }
        })
        .await;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `req_tot` of each server of the backend in HAProxy's stats CSV (header line `# pxname,…`).
fn answered_by_server(csv: &str) -> Vec<(String, u64)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no {name} in stats"));
    let (proxy, server, requests) = (column("pxname"), column("svname"), column("req_tot"));
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|row| row.get(proxy) == Some(&BACKEND) && !matches!(row.get(server), Some(&"BACKEND") | None))
        .map(|row| (row[server].to_owned(), row[requests].parse().expect("req_tot is a count")))
        .collect()
}

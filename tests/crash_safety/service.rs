//! The service under test: one `dialajoke serve` process over a SQLite file, its database and log
//! in a directory of their own that is kept if the test fails.

use std::path::{Path, PathBuf};

use telnyx_sim::SimHandle;

use crate::common::process::{ServiceProcess, free_port, simulator_account};

/// The service process and where it keeps its database.
pub struct Service {
    process: ServiceProcess,
    dir: PathBuf,
}

impl Service {
    /// Prepares a service talking to `sim`, in a fresh directory.
    pub fn new(sim: &SimHandle, api_key: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("dialajoke-crash-").tempdir().expect("temp dir").keep();
        let port = free_port();
        let mut env = simulator_account(sim, api_key);
        env.push(("DIALAJOKE_PUBLIC_URL", format!("http://127.0.0.1:{port}")));
        env.push(("DIALAJOKE_DATABASE_URL", format!("sqlite://{}", dir.join("crash.db").display())));
        Self { process: ServiceProcess::new(env!("CARGO_BIN_EXE_dialajoke"), "service", &dir, port, env), dir }
    }

    /// `http://127.0.0.1:PORT`, the same on every start.
    pub fn base(&self) -> String {
        self.process.base()
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
        self.process.start().await;
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops the service and removes its directory (only called once every check passed).
    pub fn finish(mut self) {
        self.process.kill();
        std::fs::remove_dir_all(&self.dir).expect("test directory removed");
    }
}

//! Where a new rule's occurrences are checked. Checking up to a year of them against the
//! calling hours and the per-number limits is CPU work, and a web worker busy with it answers
//! nothing else: not `/health`, not Telnyx's webhooks (which Telnyx gives 2 s). So the checks run
//! on Tokio's blocking pool, a few at a time: a flood of rule requests waits for a turn without
//! holding up any other request, and leaves cores for the web workers.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Called on the blocking pool as each check begins, before it works; lets a test hold checks in
/// flight and see what still answers meanwhile.
pub type Probe = Arc<dyn Fn() + Send + Sync>;

/// Runs rule checks off the web workers, a bounded number at once; cheap to clone.
#[derive(Clone)]
pub struct CheckPool {
    /// One permit per check allowed to run at once; a check holds its permit until it ends,
    /// even if the request that asked for it went away.
    turns: Arc<Semaphore>,
    probe: Option<Probe>,
}

impl CheckPool {
    /// A pool running at most `at_once` checks together (at least one).
    pub fn new(at_once: usize, probe: Option<Probe>) -> Self {
        Self { turns: Arc::new(Semaphore::new(at_once.max(1))), probe }
    }

    /// Half the cores (at least one): checks may keep some cores busy, never all of them.
    pub fn default_size() -> usize {
        std::thread::available_parallelism().map_or(1, |cores| cores.get() / 2).max(1)
    }

    /// Runs `check` on the blocking pool once a turn is free, and returns what it returned.
    pub async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> T {
        // The semaphore is never closed, so acquiring only waits.
        let turn = Arc::clone(&self.turns).acquire_owned().await.expect("the check semaphore is never closed");
        let probe = self.probe.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            if let Some(probe) = probe {
                probe();
            }
            check()
        });
        // A blocking task cannot be cancelled once it runs, so it fails only by panicking: that
        // panic is the caller's.
        task.await.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))
    }
}

//! This instance's wall clock. Everything in the service that needs "now" on its own side reads
//! it here rather than from the system directly, so that a test can run an instance whose clock
//! is wrong (`DIALAJOKE_CLOCK_OFFSET_SECS`) and show that nothing which matters depends on it:
//! when a call is due, whether a lease ran out and how many dials went out lately are all decided
//! by the store's clock (the database server's, on PostgreSQL).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// How far this process's clock is shifted from the system's, in milliseconds.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Shifts this process's clock by `seconds` (negative: behind). Only for tests of clock skew;
/// call it once at start-up, before anything reads the clock.
pub fn skew(seconds: i64) {
    OFFSET_MS.store(seconds.saturating_mul(1000), Ordering::Relaxed);
}

/// The time as this instance sees it.
pub fn now() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(OFFSET_MS.load(Ordering::Relaxed))
}

/// The clock an embedded store goes by: this instance's (above), or one set by hand, so that
/// tests can drive the scheduler through chosen instants (a January morning, a clock change)
/// while the store still decides what is due, as it does in service.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// This instance's clock, [`now`].
    #[default]
    Instance,
    /// A clock that reads whatever it was last set to.
    Manual(ManualClock),
}

impl Clock {
    /// The time by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::Instance => now(),
            Self::Manual(manual) => manual.now(),
        }
    }
}

/// A clock that stands still at the instant it was last set to; clones share it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock reading `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// What the clock reads.
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

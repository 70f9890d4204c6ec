//! This instance's wall clock. Everything in the service that needs "now" on its own side reads
//! it here rather than from the system directly, so that a test can run an instance whose clock
//! is wrong (`DIALAJOKE_CLOCK_OFFSET_SECS`) and show that nothing which matters depends on it:
//! when a call is due, whether a lease ran out and how many dials went out lately are all decided
//! by the store's clock (the database server's, on PostgreSQL).

use std::sync::atomic::{AtomicI64, Ordering};

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

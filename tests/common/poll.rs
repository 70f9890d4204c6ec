//! The one way tests wait for what the service does in the background: ask a probe again and
//! again, within a bound, until it has the answer; past the bound the test fails saying what it
//! awaited and what it saw last. No test sleeps in place of an outcome it can ask about.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// How long to wait between two looks.
const EVERY: Duration = Duration::from_millis(20);

/// Polls `probe` until it gives `Ok(value)`, for at most `bound`; an `Err` carries what the probe
/// saw instead, shown if the bound passes.
pub async fn poll_until<T, Seen, F, Fut>(what: &str, bound: Duration, probe: F) -> T
where
    Seen: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Seen>>,
{
    match poll_within(bound, probe).await {
        Ok(value) => value,
        Err(seen) => panic!("timed out after {bound:?} waiting until {what}; last seen: {seen:#?}"),
    }
}

/// Like [`poll_until`], but past the bound it hands back what the probe saw last, for a caller
/// that has more to say about it (or something to clean up) before it fails.
pub async fn poll_within<T, Seen, F, Fut>(bound: Duration, mut probe: F) -> Result<T, Seen>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Seen>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let seen = match probe().await {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(EVERY).await;
    }
}

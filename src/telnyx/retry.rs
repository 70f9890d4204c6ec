//! When the Telnyx client tries a command again and how long it waits first: each attempt is
//! sorted into done / refused / retryable / reply lost, and waits use exponential back-off with
//! full jitter, with the server's `Retry-After` honoured within bounds.

use super::error::TelnyxError;
use chrono::{DateTime, Utc};
use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use std::time::Duration;

/// The result of one HTTP attempt.
pub(crate) enum Attempt {
    /// A 2xx reply; its body is still unread.
    Done(reqwest::Response),
    /// A refusal that no repeat would change.
    Failed(TelnyxError),
    /// Telnyx did not act (or asked us to wait); `retry_after` is its requested wait.
    Retryable { reason: String, retry_after: Option<Duration> },
    /// The request may have reached Telnyx; the reply was lost.
    ReplyLost(&'static str),
}

impl Attempt {
    /// Sorts a reply by status: success, "try again later", or a refusal to report.
    pub(crate) async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status();
        if status.is_success() {
            return Self::Done(response);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
        {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, crate::domain::clock::now()));
            return Self::Retryable { reason: format!("HTTP {status}"), retry_after };
        }
        // A body that cannot be read still leaves a clear refusal, just without Telnyx's details.
        let body = response.bytes().await.unwrap_or_default();
        Self::Failed(TelnyxError::rejected(status, &body))
    }

    /// Sorts a request that got no reply: only a connect error proves nothing reached Telnyx.
    pub(crate) fn from_transport_error(error: &reqwest::Error) -> Self {
        if error.is_connect() {
            Self::Retryable { reason: error_kind(error).to_owned(), retry_after: None }
        } else {
            Self::ReplyLost(error_kind(error))
        }
    }
}

/// A short, secret-free name for a transport error (its Display would include the URL).
pub(crate) fn error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else {
        "connection lost"
    }
}

/// The retry schedule of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Total tries of one command, the first included (at least 1).
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl RetryPolicy {
    /// The longest back-off allowed after failed attempt number `attempt` (1-based):
    /// `initial * 2^(attempt-1)`, capped at `max_backoff`.
    fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }

    /// The wait before the next attempt. Full jitter spreads clients that failed together;
    /// a `Retry-After` from the server lifts the wait (never above `max_backoff`, so a hostile or
    /// confused header cannot stall a call for hours) but never lowers it.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = rand::thread_rng().gen_range(Duration::ZERO..=ceiling);
        let requested = retry_after.unwrap_or_default().min(self.max_backoff);
        jittered.max(requested)
    }
}

/// Reads a `Retry-After` value: either delay seconds or an HTTP date (a date in the past means
/// "now"). `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_ceiling_doubles_per_attempt_up_to_the_maximum() {
        let p = policy();
        let ceilings: Vec<u128> = (1..=6).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jittered_delay_stays_within_the_ceiling() {
        let p = policy();
        for _ in 0..200 {
            assert!(p.delay(3, None) <= Duration::from_millis(400));
        }
    }

    #[test]
    fn retry_after_raises_the_delay_but_is_clamped_to_the_maximum() {
        let p = policy();
        for _ in 0..50 {
            let short = p.delay(1, Some(Duration::from_millis(700)));
            assert!(short >= Duration::from_millis(700) && short <= Duration::from_secs(1));
            assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), p.max_backoff);
        }
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").expect("valid instant").with_timezone(&Utc);
        let parse = |v| parse_retry_after(v, now);
        assert_eq!(parse("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:05 GMT"), Some(Duration::from_secs(5)));
        assert_eq!(parse("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1"), None);
    }
}

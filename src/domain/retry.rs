//! The retry policy: a call that found the line busy or nobody answering is tried again, as a new
//! call of its own (with its own history), a set number of times at a set spacing. Nothing else is
//! retried: a completed call told its joke, a rejected one was declined on purpose, and a failed
//! one was refused by Telnyx (a 4xx) or could not reach it after the client's own retries.

use std::time::Duration;

use super::CallStatus;

/// How busy and unanswered calls are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many retries follow the first call (0: none).
    pub retries: u32,
    /// How long after the failed call each retry is due.
    pub spacing: Duration,
}

impl RetryPolicy {
    /// The number of the retry that should follow a call that ended `status` and was itself
    /// retry number `retry` (0 for the first call), or None when it is not retried.
    pub fn next(&self, status: CallStatus, retry: u32) -> Option<u32> {
        let retried = matches!(status, CallStatus::Busy | CallStatus::NoAnswer);
        retried.then_some(retry + 1).filter(|number| *number <= self.retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: RetryPolicy = RetryPolicy { retries: 2, spacing: Duration::from_secs(600) };

    #[test]
    fn busy_and_unanswered_calls_are_retried_twice_by_default() {
        for status in [CallStatus::Busy, CallStatus::NoAnswer] {
            assert_eq!(DEFAULT.next(status, 0), Some(1));
            assert_eq!(DEFAULT.next(status, 1), Some(2));
            assert_eq!(DEFAULT.next(status, 2), None);
        }
    }

    #[test]
    fn completed_rejected_and_failed_calls_are_never_retried() {
        for status in [CallStatus::Completed, CallStatus::Rejected, CallStatus::Failed, CallStatus::Missed] {
            assert_eq!(DEFAULT.next(status, 0), None, "{status}");
        }
    }

    #[test]
    fn no_retries_means_none() {
        let never = RetryPolicy { retries: 0, ..DEFAULT };
        assert_eq!(never.next(CallStatus::Busy, 0), None);
    }
}

//! Dial pacing: when dials arrived (for tests that check the service's pacing) and Telnyx's
//! rolling-window Dial rate limit (for the 429 / 90103 answer).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::DialLimit;
use crate::lock;

/// Arrivals kept for [`Pacing::max_in_window`]; older ones are forgotten.
const ARRIVALS_KEPT: usize = 100_000;

pub(crate) struct Pacing {
    limit: DialLimit,
    arrivals: Mutex<VecDeque<Instant>>,
    accepted: Mutex<VecDeque<Instant>>,
}

impl Pacing {
    pub(crate) fn new(limit: DialLimit) -> Self {
        Self { limit, arrivals: Mutex::new(VecDeque::new()), accepted: Mutex::new(VecDeque::new()) }
    }

    pub(crate) fn limit(&self) -> DialLimit {
        self.limit
    }

    /// Notes that a Dial request arrived, whatever becomes of it.
    pub(crate) fn arrived(&self) {
        let arrivals = &mut *lock(&self.arrivals);
        if arrivals.len() == ARRIVALS_KEPT {
            arrivals.pop_front();
        }
        arrivals.push_back(Instant::now());
    }

    /// Takes one place in the rolling window; `false` when the window is full.
    pub(crate) fn admit(&self) -> bool {
        let now = Instant::now();
        let accepted = &mut *lock(&self.accepted);
        while accepted.front().is_some_and(|at| now.duration_since(*at) >= self.limit.window) {
            accepted.pop_front();
        }
        if accepted.len() >= self.limit.max_dials {
            return false;
        }
        accepted.push_back(now);
        true
    }

    /// The most dials that arrived within any span of `window`.
    pub(crate) fn max_in_window(&self, window: Duration) -> usize {
        let arrivals = lock(&self.arrivals);
        let mut start = 0;
        let mut most = 0;
        for (end, at) in arrivals.iter().enumerate() {
            while start <= end && at.duration_since(arrivals[start]) >= window {
                start += 1;
            }
            most = most.max(end + 1 - start);
        }
        most
    }
}

//! Dial pacing: at most `limit` dials in any rolling `window` (Telnyx's default account limit is
//! 30 dials per second measured over 5 s, i.e. 150 per 5 s), so a burst of due calls never earns
//! a 429.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// A sliding-window log of the most recent dials.
#[derive(Debug)]
pub struct Pacer {
    limit: usize,
    window: Duration,
    /// Start instants of the dials made in the current window, oldest first.
    recent: VecDeque<Instant>,
}

impl Pacer {
    /// A pacer allowing `limit` dials per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        Self { limit, window, recent: VecDeque::with_capacity(limit.min(4096)) }
    }

    fn forget_before(&mut self, now: Instant) {
        while self.recent.front().is_some_and(|&at| now.duration_since(at) >= self.window) {
            self.recent.pop_front();
        }
    }

    /// How many dials may start at `now`.
    pub fn available(&mut self, now: Instant) -> usize {
        self.forget_before(now);
        self.limit - self.recent.len()
    }

    /// Records that a dial starts at `now`; the caller checked [`Pacer::available`] first.
    pub fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }

    /// When the next dial may start, if none may start at `now`.
    pub fn next_free_at(&mut self, now: Instant) -> Option<Instant> {
        if self.available(now) > 0 {
            return None;
        }
        self.recent.front().map(|&oldest| oldest + self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_frees_up_when_its_oldest_dial_ages_out() {
        let start = Instant::now();
        let mut pacer = Pacer::new(3, Duration::from_secs(5));
        for offset in [0, 1, 2] {
            let at = start + Duration::from_secs(offset);
            assert!(pacer.available(at) > 0);
            pacer.record(at);
        }
        let later = start + Duration::from_secs(3);
        assert_eq!(pacer.available(later), 0);
        assert_eq!(pacer.next_free_at(later), Some(start + Duration::from_secs(5)));
        assert_eq!(pacer.available(start + Duration::from_secs(5)), 1);
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        let start = Instant::now();
        let mut pacer = Pacer::new(150, Duration::from_secs(5));
        let mut dials = Vec::new();
        for ms in (0..20_000).step_by(7) {
            let at = start + Duration::from_millis(ms);
            if pacer.available(at) > 0 {
                pacer.record(at);
                dials.push(at);
            }
        }
        let worst = dials
            .iter()
            .map(|&from| dials.iter().filter(|&&d| d >= from && d < from + Duration::from_secs(5)).count())
            .max();
        assert_eq!(worst, Some(150));
    }
}

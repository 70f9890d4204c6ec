//! What a simulator run is made of: where it listens, which key it accepts, how it signs, how
//! fast simulated time passes and which faults it injects.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::behaviour::Behaviour;
use crate::faults::Faults;

/// Everything a simulator run needs.
#[derive(Clone)]
pub struct SimConfig {
    /// Where the HTTP server listens; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// The only Bearer key the API accepts.
    pub api_key: String,
    /// Seed of the Ed25519 key that signs webhooks; `None` draws a fresh key for this run.
    pub signing_seed: Option<[u8; 32]>,
    /// Where webhooks go when a Dial names no `webhook_url` (the app's URL, at Telnyx).
    pub default_webhook_url: Option<String>,
    /// How long simulated things take.
    pub timing: Timing,
    /// Faults injected from the start (they can be changed while running).
    pub faults: Faults,
    /// Per-number behaviours that win over the built-in table of test numbers.
    pub behaviours: BTreeMap<String, Behaviour>,
    /// Telnyx's Dial rate limit (150 dials in any 5 s by default).
    pub dial_limit: DialLimit,
}

impl SimConfig {
    /// A simulator for tests: loopback on a free port, fast timing, no faults, fresh key.
    pub fn local(api_key: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: api_key.into(),
            signing_seed: None,
            default_webhook_url: None,
            timing: Timing::fast(),
            faults: Faults::default(),
            behaviours: BTreeMap::new(),
            dial_limit: DialLimit::default(),
        }
    }
}

/// Leaves out the key and the seed: the key may be a real one taken from the environment.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("bind", &self.bind)
            .field("api_key", &"<redacted>")
            .field("signing_seed", &self.signing_seed.map(|_| "<redacted>"))
            .field("default_webhook_url", &self.default_webhook_url)
            .field("timing", &self.timing)
            .field("faults", &self.faults)
            .field("behaviours", &self.behaviours)
            .field("dial_limit", &self.dial_limit)
            .finish()
    }
}

/// Durations of everything the simulator makes take time.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Ringing before the callee answers, is busy or rejects.
    pub ring: Duration,
    /// Upper bound on a Dial's `timeout_secs` before an unanswered call gives up.
    pub no_answer_cap: Duration,
    /// From answer to `call.machine.detection.ended`.
    pub machine_detection: Duration,
    /// From a machine's detection to the end of its greeting (`call.machine.greeting.ended`).
    pub machine_greeting: Duration,
    /// Fixed part of the time a speak takes.
    pub speak_base: Duration,
    /// Added per character of the text spoken.
    pub speak_per_char: Duration,
    /// Upper bound on a Dial's `time_limit_secs` before an answered call is cut.
    pub time_limit_cap: Duration,
    /// How long a webhook receiver has to answer one delivery (2 s at Telnyx).
    pub webhook_timeout: Duration,
    /// Delivery attempts per event before giving up.
    pub delivery_attempts: u32,
    /// Wait before the second attempt; it doubles before each later one.
    pub first_retry: Duration,
    /// How long a `command_id` is remembered (60 s at Telnyx).
    pub command_id_window: Duration,
    /// How long an ended call can still be looked up (10 min at Telnyx).
    pub status_retention: Duration,
}

impl Timing {
    /// Timing for tests: everything within a few hundred milliseconds.
    pub fn fast() -> Self {
        Self {
            ring: Duration::from_millis(50),
            no_answer_cap: Duration::from_millis(150),
            machine_detection: Duration::from_millis(30),
            machine_greeting: Duration::from_millis(40),
            speak_base: Duration::from_millis(10),
            speak_per_char: Duration::from_millis(1),
            time_limit_cap: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(2),
            delivery_attempts: 4,
            first_retry: Duration::from_millis(200),
            command_id_window: Duration::from_secs(60),
            status_retention: Duration::from_secs(600),
        }
    }

    /// Timing close to a real call: seconds of ringing, speech at a speaking pace.
    pub fn realistic() -> Self {
        Self {
            ring: Duration::from_secs(4),
            no_answer_cap: Duration::from_secs(600),
            machine_detection: Duration::from_secs(3),
            machine_greeting: Duration::from_secs(5),
            speak_base: Duration::from_millis(500),
            speak_per_char: Duration::from_millis(60),
            time_limit_cap: Duration::from_secs(14_400),
            first_retry: Duration::from_secs(1),
            ..Self::fast()
        }
    }

    /// How long speaking `text` takes.
    pub(crate) fn speech_length(&self, text: &str) -> Duration {
        let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
        self.speak_base + self.speak_per_char.saturating_mul(chars)
    }

    /// Wait before attempt `next` (2, 3, …): `first_retry`, then doubling.
    pub(crate) fn retry_delay(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(16);
        self.first_retry.saturating_mul(1 << doublings)
    }
}

/// How many dials Telnyx accepts in a rolling window before answering 429 / 90103.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialLimit {
    /// Dials accepted per window.
    pub max_dials: usize,
    /// The rolling window.
    pub window: Duration,
}

impl Default for DialLimit {
    fn default() -> Self {
        Self { max_dials: 150, window: Duration::from_secs(5) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_the_first_delay_then_double() {
        let timing = Timing::fast();

        let waits: Vec<Duration> = (2..=4).map(|next| timing.retry_delay(next)).collect();

        assert_eq!(waits, [200, 400, 800].map(Duration::from_millis));
    }

    #[test]
    fn speech_takes_longer_for_longer_text() {
        let timing = Timing::fast();

        assert!(timing.speech_length("a longer joke") > timing.speech_length("short"));
    }
}

//! Fault injection: API answers that go wrong (500, 429, held past the client's timeout,
//! connection dropped) and webhook deliveries that misbehave (duplicated, reordered, delayed,
//! dropped, given up early). The same JSON shape is used by config, `POST /sim/faults` and tests.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::journal::RequestKind;
use crate::lock;

/// All faults in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// API faults; the first one that fires for a request wins.
    pub api: Vec<ApiFault>,
    /// Webhook delivery faults.
    pub webhooks: WebhookFaults,
    /// Seed of the random choices (probabilities, shuffles), so a run can be replayed.
    pub seed: u64,
}

/// One way of answering API requests badly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFault {
    /// What goes wrong.
    pub kind: ApiFaultKind,
    /// Which requests it hits.
    #[serde(default)]
    pub target: FaultTarget,
    /// Hit only the next `count` matching requests; `None` means no limit.
    #[serde(default)]
    pub count: Option<u32>,
    /// Hit each matching request with this probability; `None` means always.
    #[serde(default)]
    pub probability: Option<f64>,
    /// `Retry-After` seconds of a `rate_limited` answer.
    #[serde(default = "default_retry_after_secs")]
    pub retry_after_secs: u64,
    /// How long a `slow` answer is held after the request was acted on.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

fn default_retry_after_secs() -> u64 {
    1
}

fn default_hold_ms() -> u64 {
    3_000
}

impl ApiFault {
    /// `kind` on the next `count` requests of any kind.
    pub fn next(kind: ApiFaultKind, count: u32) -> Self {
        Self {
            kind,
            target: FaultTarget::All,
            count: Some(count),
            probability: None,
            retry_after_secs: default_retry_after_secs(),
            hold_ms: default_hold_ms(),
        }
    }

    /// The same fault limited to `target` requests.
    pub fn on(self, target: FaultTarget) -> Self {
        Self { target, ..self }
    }
}

/// What an API fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ApiFaultKind {
    /// 500 with Telnyx's internal-error body; the request is not acted on.
    InternalError,
    /// 429 (10011) with `Retry-After`; the request is not acted on.
    RateLimited,
    /// The request is acted on, then the answer is held for `hold_ms` (the ambiguous case).
    Slow,
    /// The request is acted on, then the connection is closed without an answer.
    Reset,
}

/// Which API requests a fault hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// Every request.
    #[default]
    All,
    /// `POST /v2/calls` only.
    Dial,
    /// Call commands (answer, speak, hangup) only.
    Commands,
}

impl FaultTarget {
    fn hits(self, kind: RequestKind) -> bool {
        match self {
            FaultTarget::All => true,
            FaultTarget::Dial => kind == RequestKind::Dial,
            FaultTarget::Commands => kind.is_command(),
        }
    }
}

/// Ways of delivering webhooks badly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookFaults {
    /// Deliver every event twice (same event id).
    pub duplicate: bool,
    /// Gather a call's events for `reorder_window_ms` and deliver them in a shuffled order.
    pub reorder: bool,
    /// How long events are gathered for reordering.
    pub reorder_window_ms: u64,
    /// Wait this long before delivering each event.
    pub delay_ms: u64,
    /// Give up after this many failed attempts instead of the timing's count.
    pub give_up_after: Option<u32>,
    /// Event types that are lost: never sent, journalled as dropped.
    pub drop_event_types: Vec<String>,
}

impl Default for WebhookFaults {
    fn default() -> Self {
        Self {
            duplicate: false,
            reorder: false,
            reorder_window_ms: 250,
            delay_ms: 0,
            give_up_after: None,
            drop_event_types: Vec::new(),
        }
    }
}

/// The faults in force plus what they have used up (counts, random stream).
pub(crate) struct FaultState {
    inner: Mutex<ActiveFaults>,
}

struct ActiveFaults {
    faults: Faults,
    remaining: Vec<Option<u32>>,
    rng: StdRng,
}

impl ActiveFaults {
    fn new(faults: Faults) -> Self {
        Self {
            remaining: faults.api.iter().map(|fault| fault.count).collect(),
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
        }
    }
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self { inner: Mutex::new(ActiveFaults::new(faults)) }
    }

    /// Replaces the faults; counts and the random stream start over.
    pub(crate) fn set(&self, faults: Faults) {
        *lock(&self.inner) = ActiveFaults::new(faults);
    }

    pub(crate) fn current(&self) -> Faults {
        lock(&self.inner).faults.clone()
    }

    pub(crate) fn webhooks(&self) -> WebhookFaults {
        lock(&self.inner).faults.webhooks.clone()
    }

    /// The fault that hits this request, if any; uses up one of its count.
    pub(crate) fn strike(&self, kind: RequestKind) -> Option<ApiFault> {
        let active = &mut *lock(&self.inner);
        for (fault, remaining) in active.faults.api.iter().zip(active.remaining.iter_mut()) {
            if !fault.target.hits(kind) || *remaining == Some(0) {
                continue;
            }
            if fault.probability.is_some_and(|p| !active.rng.gen_bool(p.clamp(0.0, 1.0))) {
                continue;
            }
            if let Some(left) = remaining {
                *left -= 1;
            }
            return Some(fault.clone());
        }
        None
    }

    /// A random order of `len` items that, when there are two or more, is never the original.
    pub(crate) fn shuffled_order(&self, len: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut lock(&self.inner).rng);
        if order.windows(2).all(|pair| pair[0] < pair[1]) {
            order.reverse();
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_hits_only_its_target_and_only_count_times() {
        let state = FaultState::new(Faults {
            api: vec![ApiFault::next(ApiFaultKind::InternalError, 2).on(FaultTarget::Commands)],
            ..Faults::default()
        });

        let hits: Vec<bool> = [RequestKind::Dial, RequestKind::Speak, RequestKind::Hangup, RequestKind::Speak]
            .map(|kind| state.strike(kind).is_some())
            .into();

        assert_eq!(hits, [false, true, true, false]);
    }

    #[test]
    fn a_shuffled_order_always_differs_from_the_original() {
        let state = FaultState::new(Faults::default());

        for len in 2..8 {
            let order = state.shuffled_order(len);
            assert_ne!(order, (0..len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn faults_read_from_json_fill_in_defaults() {
        let text = r#"{"api":[{"kind":"rate_limited","count":1}],"webhooks":{"duplicate":true}}"#;

        let faults: Faults = serde_json::from_str(text).expect("parses");

        assert_eq!(faults.api[0].retry_after_secs, 1);
        assert_eq!(faults.api[0].target, FaultTarget::All);
        assert!(faults.webhooks.duplicate && !faults.webhooks.reorder);
    }
}

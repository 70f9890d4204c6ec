//! The journal: every API request received and every webhook delivery attempt, with what came
//! of it, so tests and `GET /sim/journal` can see exactly what happened on the wire.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::faults::ApiFaultKind;
use crate::lock;

/// Entries kept; older ones are forgotten so a long run stays bounded (counts are kept).
const CAPACITY: usize = 100_000;

/// Which API operation a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// `POST /v2/calls`.
    Dial,
    /// `POST /v2/calls/{id}/actions/speak`.
    Speak,
    /// `POST /v2/calls/{id}/actions/hangup`.
    Hangup,
    /// `POST /v2/calls/{id}/actions/answer`.
    Answer,
    /// `GET /v2/calls/{id}`.
    Status,
}

impl RequestKind {
    /// Whether this is a call command (answer, speak, hangup).
    pub fn is_command(self) -> bool {
        matches!(self, RequestKind::Speak | RequestKind::Hangup | RequestKind::Answer)
    }
}

/// One thing the simulator saw or did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum JournalEntry {
    /// An API request and the answer it got.
    Request(RequestRecord),
    /// One attempt at delivering a webhook.
    Delivery(DeliveryRecord),
}

/// An API request and the answer it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the answer was decided.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// The operation, when the path is one of the simulated endpoints.
    pub kind: Option<RequestKind>,
    /// The body as JSON, or as a JSON string when it was not JSON.
    pub body: Value,
    /// The status answered; `None` when the connection was dropped instead.
    pub status: Option<u16>,
    /// The injected fault that shaped the answer, if any.
    pub fault: Option<ApiFaultKind>,
}

/// One attempt at delivering a webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// When the attempt finished.
    pub at: DateTime<Utc>,
    /// The event id (`data.id`), the same on every attempt and duplicate.
    pub event_id: Uuid,
    /// The event type, e.g. `call.answered`.
    pub event_type: String,
    /// The call the event is about.
    pub call_control_id: String,
    /// Where it was sent.
    pub url: String,
    /// `meta.attempt` of this delivery (1 for the first).
    pub attempt: u32,
    /// What came of it.
    pub outcome: DeliveryOutcome,
    /// Whether the simulator stopped trying after this attempt without success.
    pub gave_up: bool,
}

/// What came of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// The status it answered.
        status: u16,
    },
    /// The receiver answered something else (3xx counts as failure, as at Telnyx).
    Refused {
        /// The status it answered.
        status: u16,
    },
    /// No answer: connection error or timeout.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// Not sent at all: an injected loss.
    Dropped,
}

impl DeliveryOutcome {
    /// Whether the event reached the receiver and was acknowledged.
    pub fn is_delivered(&self) -> bool {
        matches!(self, DeliveryOutcome::Delivered { .. })
    }
}

#[derive(Default)]
struct Entries {
    recent: VecDeque<JournalEntry>,
    requests_by_kind: HashMap<RequestKind, usize>,
}

/// The run's journal.
#[derive(Default)]
pub(crate) struct Journal {
    entries: Mutex<Entries>,
}

impl Journal {
    pub(crate) fn record(&self, entry: JournalEntry) {
        let entries = &mut *lock(&self.entries);
        if let JournalEntry::Request(RequestRecord { kind: Some(kind), .. }) = &entry {
            *entries.requests_by_kind.entry(*kind).or_default() += 1;
        }
        if entries.recent.len() == CAPACITY {
            entries.recent.pop_front();
        }
        entries.recent.push_back(entry);
    }

    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        lock(&self.entries).recent.iter().cloned().collect()
    }

    pub(crate) fn count(&self, kind: RequestKind) -> usize {
        lock(&self.entries).requests_by_kind.get(&kind).copied().unwrap_or(0)
    }
}

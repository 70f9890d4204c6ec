//! The call record and its history, as the store keeps them and every layer reads them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ids::{CallId, RuleId};
use super::{CallStatus, DueAt, PhoneNumber, Timezone};

/// A call as stored: what was asked for and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Our id.
    pub id: CallId,
    /// Who is called.
    pub to: PhoneNumber,
    /// When it is due.
    pub due_at: DueAt,
    /// The zone the scheduler thinks in.
    pub timezone: Timezone,
    /// Where it is in its life.
    pub status: CallStatus,
    /// The lease's fencing token: bumped when the queue claims the call and whenever another
    /// lease holder takes its dial over, so a former holder can no longer renew or act on it.
    /// Part of the speak and hangup command ids, so retries of one attempt are recognised by
    /// Telnyx as repeats (the dial keeps one id for life, see [`CallId::dial_command_id`]).
    pub attempt: u32,
    /// Telnyx's id for the call leg, once the dial was accepted.
    pub call_control_id: Option<String>,
    /// The joke told (or being told).
    pub joke: Option<String>,
    /// Why the call failed, when it did (Telnyx's code and detail for a refused dial).
    pub last_error: Option<String>,
    /// Set when the local time was ambiguous and the earlier instant was taken.
    pub note: Option<String>,
    /// When it was scheduled.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The recurring rule it was made for (an occurrence of it, or a retry of one).
    pub rule: Option<RuleId>,
    /// The rule's occurrence it stands for; None for one-off calls and retries.
    pub occurrence_at: Option<DateTime<Utc>>,
    /// For a retry: the first call of its chain, and which retry it is (1, 2, …).
    pub retry: Option<(CallId, u32)>,
}

/// One line of a call's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// What happened, e.g. `scheduled`, `dial_requested`, `call.answered`.
    pub kind: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Details a person may want (the joke, a hangup cause, an error).
    pub detail: Option<String>,
}

impl HistoryEntry {
    /// An entry stamped now.
    pub fn now(kind: impl Into<String>, detail: Option<String>) -> Self {
        Self { kind: kind.into(), time: super::clock::now(), detail }
    }
}

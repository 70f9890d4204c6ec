//! The calls domain: values that can only be valid (numbers, instants, zones), the call record,
//! the state machine, and the call flow that reacts to Telnyx's webhooks.

pub mod country_zones;
pub mod flow;
pub mod hours;
pub mod inbox;
pub mod limits;
pub mod local_time;
pub mod machine;
pub mod outcomes;
pub mod phone;
pub mod policy;
pub mod retry;
pub mod schedule;
pub mod service;
pub mod state;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::rules::RuleId;

pub use phone::{NumberType, PhoneError, PhoneNumber};
pub use schedule::{DueAt, FieldError, Schedule, ScheduleInput, ScheduleRules, Timezone, ValidationErrors};
pub use state::{CallEvent, CallStatus, Transition};

/// Our id for a scheduled call (a random UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CallId(Uuid);

impl CallId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id of the command for `step` of this call's `attempt`: the same inputs always give
    /// the same id, so a retried command is recognised by Telnyx as the same command.
    pub fn command_id(&self, step: &str, attempt: u32) -> String {
        Uuid::new_v5(&self.0, format!("{step}:{attempt}").as_bytes()).to_string()
    }

    /// The id of this call's dial, the same for its whole life. A call is claimed once (its
    /// first attempt) and every later send of its dial, by whichever instance took it over, must
    /// be the same command for Telnyx, or a takeover would ring the callee a second time.
    pub fn dial_command_id(&self) -> String {
        self.command_id("dial", 1)
    }

    /// The UUID itself, for stores that keep it as one.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for CallId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl Default for CallId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CallId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

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
        Self { kind: kind.into(), time: crate::clock::now(), detail }
    }
}

//! The ids of calls and rules: random UUIDs, one type each so one can never stand for the other.
//! A call's command ids are derived from its id, so a retried command is the same command.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uuid::Uuid;

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

/// Our id for a rule (a random UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RuleId(Uuid);

impl RuleId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The UUID itself, for stores that keep it as one.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for RuleId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl Default for RuleId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RuleId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

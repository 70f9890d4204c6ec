//! Recurring rules: "ring this number with a joke every Sunday at 10:00 in Europe/Dublin". A rule
//! is never dialled itself: each occurrence becomes an ordinary call, made by the materialiser a
//! moment before it is due and keyed by (rule, occurrence instant), so it rings at most once
//! however many instances run and however often they restart.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::ids::{CallId, RuleId};
use super::{DueAt, PhoneNumber, Recurrence, Timezone};

/// Whether a rule makes calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Its occurrences become calls.
    Active,
    /// It makes no calls until resumed; occurrences while paused are never made up.
    Paused,
}

impl RuleStatus {
    /// The name the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
        }
    }
}

impl FromStr for RuleStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            other => Err(format!("unknown rule status `{other}`")),
        }
    }
}

/// What happens to occurrences that fell due while the service was down (more than
/// `DIALAJOKE_GRACE_SECS` late when it came back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// They are not dialled; the rule goes on with its next occurrence.
    Skip,
    /// The most recent of them is dialled once, if it is at most `within` late; the rest are skipped.
    Once {
        /// How late a missed occurrence may still be made up.
        within: Duration,
    },
}

impl CatchUp {
    /// The default for new rules: the latest missed call is made up within an hour.
    pub const DEFAULT: Self = Self::Once { within: Duration::minutes(60) };

    /// How it is kept in the store: `skip` or `once 60` (minutes).
    pub fn to_stored(self) -> String {
        match self {
            Self::Skip => "skip".into(),
            Self::Once { within } => format!("once {}", within.num_minutes()),
        }
    }

    /// Reads back what [`CatchUp::to_stored`] wrote.
    pub fn from_stored(text: &str) -> Option<Self> {
        match text.split_once(' ') {
            None if text == "skip" => Some(Self::Skip),
            Some(("once", minutes)) => minutes.parse().ok().map(|m| Self::Once { within: Duration::minutes(m) }),
            _ => None,
        }
    }
}

/// A rule as checked, ready to store.
#[derive(Debug, Clone)]
pub struct NewRule {
    /// Its id.
    pub id: RuleId,
    /// Who is called.
    pub to: PhoneNumber,
    /// The zone whose wall clock the rule follows (also the callee's, for calling hours).
    pub timezone: Timezone,
    /// When it rings.
    pub recurrence: Recurrence,
    /// What happens to occurrences missed while the service was down.
    pub catch_up: CatchUp,
}

/// A stored rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its id.
    pub id: RuleId,
    /// Who is called.
    pub to: PhoneNumber,
    /// The zone whose wall clock the rule follows.
    pub timezone: Timezone,
    /// When it rings.
    pub recurrence: Recurrence,
    /// What happens to occurrences missed while the service was down.
    pub catch_up: CatchUp,
    /// Whether it makes calls.
    pub status: RuleStatus,
    /// Occurrences at or before this instant are dealt with (made into a call, merged into a call
    /// moved out of quiet hours, or skipped); the next call is for the first one after it. Moved
    /// forward with a compare-and-set, which is what lets several instances share the work.
    pub cursor: DateTime<Utc>,
    /// What the materialiser last had to say (occurrences skipped while the service was down).
    pub note: Option<String>,
    /// The rule's waiting call, if one is scheduled.
    pub next_call: Option<(CallId, DueAt)>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_policies_survive_the_store() {
        for policy in [CatchUp::Skip, CatchUp::DEFAULT, CatchUp::Once { within: Duration::minutes(5) }] {
            assert_eq!(CatchUp::from_stored(&policy.to_stored()), Some(policy));
        }
        assert_eq!(CatchUp::from_stored("once"), None);
    }
}

//! Recurring rules: storing, pausing, resuming and deleting them, and the materialiser's steps
//! (a rule's cursor moved and its occurrence's call stored in one atomic step).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CallStates, NewCall, StoreError};
use crate::domain::{NewRule, Occurrence, Rule, RuleId, RuleStatus};

/// One step of a rule: its cursor moves on and, usually, the call for one occurrence is stored.
#[derive(Debug, Clone)]
pub struct RuleStep {
    /// The rule.
    pub rule: RuleId,
    /// The cursor as it was read; the step applies only if it is still this (compare-and-set).
    pub cursor_from: DateTime<Utc>,
    /// The cursor after the step.
    pub cursor_to: DateTime<Utc>,
    /// A note for the rule (occurrences skipped), replacing the old one when given.
    pub note: Option<String>,
    /// The call for an occurrence, with the occurrence (the call's key with the rule).
    pub occurrence: Option<(NewCall, Occurrence)>,
}

/// What a rule step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stepped {
    /// Someone else moved the cursor first (another instance, a pause): nothing was changed.
    Stale,
    /// The cursor moved; `created` says whether the occurrence's call was new (false when a call
    /// for that occurrence already existed, which is what keeps an occurrence to one call).
    Moved {
        /// Whether a call was stored.
        created: bool,
    },
}

/// Rules as the rules service and the materialiser see them (see the [module docs](self)).
#[async_trait]
pub trait Rules: CallStates {
    /// Stores a new, active rule whose cursor starts at `now`.
    async fn insert_rule(&self, rule: &NewRule, now: DateTime<Utc>) -> Result<Rule, StoreError>;
    /// One rule, with its waiting call.
    async fn get_rule(&self, id: RuleId) -> Result<Option<Rule>, StoreError>;
    /// Every rule, oldest first, with its waiting call.
    async fn list_rules(&self) -> Result<Vec<Rule>, StoreError>;
    /// Pauses a rule, cancelling its waiting call (which gives its occurrence back), or resumes it
    /// with its cursor at `now` (what fell due while it was paused is never made up). None when
    /// there is no such rule.
    async fn set_rule_status(
        &self,
        id: RuleId,
        status: RuleStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Rule>, StoreError>;
    /// Deletes a rule and cancels its waiting calls (their history stays); false when there was none.
    async fn delete_rule(&self, id: RuleId) -> Result<bool, StoreError>;
    /// Active rules that need the materialiser: those with no waiting call for an occurrence, and
    /// those whose waiting call was due before `late_before`.
    async fn rules_to_materialise(&self, late_before: DateTime<Utc>) -> Result<Vec<Rule>, StoreError>;
    /// Applies one rule step at once: moves the cursor if it is still `cursor_from` and the rule
    /// is active, sets the note, and stores the occurrence's call unless one exists for it.
    async fn step_rule(&self, step: &RuleStep) -> Result<Stepped, StoreError>;
}

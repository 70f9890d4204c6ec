//! Durable state: calls, their history, recurring rules, the webhook inbox and the web's
//! sessions, behind one trait so the embedded SQLite file and a shared PostgreSQL database are
//! interchangeable. Whatever depends on time (is a call due, did a lease run out, how many dials
//! went out lately) is decided by the store's own clock, so instances whose clocks disagree still
//! agree on it.

mod dialing;
mod feeds;
mod limits;
mod postgres;
mod sessions;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::domain::limits::{LimitHit, Limits};
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, DueAt, HistoryEntry, PhoneNumber, Schedule};
use crate::domain::{NewRule, Occurrence, Rule, RuleId, RuleStatus};

pub use dialing::{Claimed, DialLimits, HeldBack, LeaseTerms, TakenOver, Takeover};
pub use feeds::{ChangeFeed, EventsLock, QueueNotice};
pub use postgres::PgStore;
pub use sessions::Sessions;
pub use sqlite::SqliteStore;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
    /// The migrations could not be applied.
    #[error("the database's migrations could not be applied")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back as a valid value.
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    /// A shared write failed; every caller whose work was in it gets this copy of the reason.
    #[error("database write failed: {0}")]
    WriteFailed(String),
    /// The write would make more calls ring near one another than a limit allows; nothing was
    /// changed.
    #[error(transparent)]
    LimitReached(#[from] LimitHit),
    /// The database URL names no backend we have.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
}

/// A call to be stored.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// Its id.
    pub id: CallId,
    /// What was asked for.
    pub schedule: Schedule,
    /// The client's `Idempotency-Key`, if any, with a hash of the request it came with.
    pub idempotency: Option<(String, String)>,
}

/// What storing a new call did.
#[derive(Debug, Clone)]
pub enum Inserted {
    /// A new call was stored.
    Created(Call),
    /// The idempotency key was seen before: this is the first call stored with it and the hash
    /// of the request that created it.
    Existing(Call, String),
}

/// Which calls a listing wants.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only calls in this status.
    pub status: Option<CallStatus>,
    /// Page size.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

/// The fields a status change may set besides the status.
#[derive(Debug, Clone, Default)]
pub struct CallPatch {
    /// Telnyx's id for the call.
    pub call_control_id: Option<String>,
    /// The joke chosen.
    pub joke: Option<String>,
    /// Why it failed.
    pub last_error: Option<String>,
}

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

/// A webhook event as kept in the inbox.
#[derive(Debug, Clone)]
pub struct InboxEvent {
    /// Telnyx's event id (`data.id`), unique.
    pub event_id: String,
    /// Groups the events of one call (our call id, or Telnyx's call_control_id when unknown).
    pub call_key: String,
    /// `data.event_type`.
    pub event_type: String,
    /// The raw body as received.
    pub body: Vec<u8>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// An inbox event waiting to be applied.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// Arrival order.
    pub seq: i64,
    /// The raw body.
    pub body: Vec<u8>,
    /// How many times applying it failed already.
    pub attempts: u32,
}

/// The store's contract. Every method is one atomic step.
///
/// A store is opened with the ring-time limits ([`crate::domain::limits`]) and every write that
/// sets when a call rings ([`Store::insert_call`], [`Store::step_rule`], [`Store::insert_retry`],
/// [`Store::reschedule`]) keeps to them in the same atomic step: one that would break them changes
/// nothing and fails with [`StoreError::LimitReached`].
#[async_trait]
pub trait Store: Sessions + Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The store's clock: the time every due time, lease and dial window is measured against.
    async fn now(&self) -> Result<DateTime<Utc>, StoreError>;
    /// Stores a scheduled call with its first history entry (or finds the one with the same key),
    /// and tells the other instances' queues.
    async fn insert_call(&self, call: &NewCall) -> Result<Inserted, StoreError>;
    /// The call first stored with this idempotency key, with its request fingerprint.
    async fn find_idempotent(&self, key: &str) -> Result<Option<(Call, String)>, StoreError>;
    /// One call.
    async fn get_call(&self, id: CallId) -> Result<Option<Call>, StoreError>;
    /// The call Telnyx knows by this id.
    async fn find_by_call_control_id(&self, id: &str) -> Result<Option<Call>, StoreError>;
    /// Listens to the ids of calls that change from now on, on any instance (see [`ChangeFeed`]).
    fn changes(&self) -> broadcast::Receiver<CallId>;
    /// Listens to calls other instances schedule or cancel, for this instance's timed queue.
    fn queue_notices(&self) -> broadcast::Receiver<QueueNotice>;
    /// How many calls reached each terminal status since `since`, per `bucket_secs` of time,
    /// counted by the moment the call ended.
    async fn outcome_counts(&self, since: DateTime<Utc>, bucket_secs: u32) -> Result<Vec<OutcomeCount>, StoreError>;
    /// Calls, newest first.
    async fn list_calls(&self, query: &ListQuery) -> Result<Vec<Call>, StoreError>;
    /// A call's history, oldest first.
    async fn history(&self, id: CallId) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Moves a call from `from` to `to` (only if it is still `from`), sets the patch's fields,
    /// ends any lease on it and appends `entry`, all at once. Returns false when the call was no
    /// longer `from`.
    async fn change_status(
        &self,
        id: CallId,
        from: CallStatus,
        to: CallStatus,
        patch: &CallPatch,
        entry: &HistoryEntry,
    ) -> Result<bool, StoreError>;
    /// Appends a history entry without changing the call (late events, commands sent).
    async fn append_history(&self, id: CallId, entry: &HistoryEntry) -> Result<(), StoreError>;
    /// The earliest scheduled calls, for the timed queue's window.
    async fn next_due(&self, limit: u32) -> Result<Vec<(CallId, DueAt)>, StoreError>;
    /// Atomically moves up to `limit` due calls from scheduled to dialing under a lease for
    /// `terms`, as far as `limits` allow (they hold for every instance together), bumping each
    /// call's attempt and counting a dial for each.
    async fn claim_due(&self, terms: &LeaseTerms, limit: u32, limits: &DialLimits) -> Result<Claimed, StoreError>;
    /// Extends the lease `terms.owner` holds on a dialing call under `attempt` (the fencing
    /// token). False when the lease is no longer theirs: someone took the dial over, or the call
    /// moved on.
    async fn renew_lease(&self, id: CallId, terms: &LeaseTerms, attempt: u32) -> Result<bool, StoreError>;
    /// Marks scheduled calls due more than `grace` ago as missed; returns their ids.
    async fn mark_missed(&self, grace: Duration) -> Result<Vec<CallId>, StoreError>;
    /// Dialing calls whose dial's fate is unknown: no Telnyx id yet, and a lease that ran out or,
    /// with `owner`, held by that instance (at start-up: its previous run died mid-dial).
    async fn orphaned_dials(&self, owner: Option<&str>) -> Result<Vec<Call>, StoreError>;
    /// Takes an orphaned dial over for `terms.owner` in one conditional step that bumps its
    /// attempt, if it is still orphaned by the store's clock (see [`Takeover`]). A dial to resend
    /// needs room within `limits`. None when someone else has it or there is no room yet.
    async fn take_over_dial(
        &self,
        id: CallId,
        terms: &LeaseTerms,
        limits: &DialLimits,
        takeover: &Takeover,
    ) -> Result<Option<TakenOver>, StoreError>;
    /// The last joke told to this number, so it is not told twice in a row.
    async fn last_joke_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError>;
    /// Records a webhook event; false when its id was already recorded (by any instance).
    async fn inbox_insert(&self, event: &InboxEvent) -> Result<bool, StoreError>;
    /// Records several events in one transaction; one flag per event, as [`Store::inbox_insert`]
    /// gives. Backends without cheap transactions may keep this default, one insert each.
    async fn inbox_insert_group(&self, events: &[InboxEvent]) -> Result<Vec<bool>, StoreError> {
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            fresh.push(self.inbox_insert(event).await?);
        }
        Ok(fresh)
    }
    /// The unapplied events of one call, in arrival order.
    async fn inbox_pending(&self, call_key: &str) -> Result<Vec<PendingEvent>, StoreError>;
    /// The call keys that have unapplied events.
    async fn inbox_pending_keys(&self) -> Result<Vec<String>, StoreError>;
    /// Marks an event applied (`error` None) or records a failed attempt to apply it; with
    /// `give_up` the event is closed with its error kept.
    async fn inbox_finish(&self, seq: i64, error: Option<&str>, give_up: bool) -> Result<(), StoreError>;
    /// The right to apply one call's events, held by one instance at a time; None when another
    /// instance holds it now (it looks for newer events of the call before it lets go).
    async fn lock_events(&self, call_key: &str) -> Result<Option<EventsLock>, StoreError>;
    /// Scheduled calls due at or before `now`, earliest first (at most `limit`): what the timed
    /// queue checks against the callees' calling hours before it claims them.
    async fn due_calls(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Call>, StoreError>;
    /// Moves a scheduled call from `from` to `to` (only if it is still scheduled and due at
    /// `from`) and appends `entry`. False when the call had changed.
    async fn reschedule(&self, id: CallId, from: DueAt, to: DueAt, entry: &HistoryEntry) -> Result<bool, StoreError>;
    /// Stores retry number `retry` of the chain that began with `first`, for rule `rule` if any;
    /// false when that retry already exists (the key (first, retry) keeps a retry to one call).
    async fn insert_retry(
        &self,
        call: &NewCall,
        first: CallId,
        retry: u32,
        rule: Option<RuleId>,
    ) -> Result<bool, StoreError>;
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

/// Opens the store a database URL names (`sqlite://PATH` or `postgres://…`), creating and
/// migrating it as needed; its writes keep to `limits`.
pub async fn open(url: &str, limits: Limits) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Arc::new(SqliteStore::open(path, limits).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PgStore::open(url, limits).await?));
    }
    Err(StoreError::UnsupportedUrl(crate::config::redact_url(url)))
}

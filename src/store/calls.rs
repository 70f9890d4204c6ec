//! The calls and their history: storing a call (once per idempotency key, within the limits),
//! reading calls back, moving one along the state machine and writing its history.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::StoreError;
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, HistoryEntry, PhoneNumber, RuleId, Schedule};

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

/// What every role that moves a call needs: the store's clock, a call, its status changes and
/// its history.
#[async_trait]
pub trait CallStates: Send + Sync {
    /// The store's clock: the time every due time, lease and dial window is measured against.
    async fn now(&self) -> Result<DateTime<Utc>, StoreError>;
    /// One call.
    async fn get_call(&self, id: CallId) -> Result<Option<Call>, StoreError>;
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
}

/// Calls as the calls service and the call flow see them (see the [module docs](self)).
#[async_trait]
pub trait Calls: CallStates {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Stores a scheduled call with its first history entry (or finds the one with the same key),
    /// and tells the other instances' queues.
    async fn insert_call(&self, call: &NewCall) -> Result<Inserted, StoreError>;
    /// The call first stored with this idempotency key, with its request fingerprint.
    async fn find_idempotent(&self, key: &str) -> Result<Option<(Call, String)>, StoreError>;
    /// The call Telnyx knows by this id.
    async fn find_by_call_control_id(&self, id: &str) -> Result<Option<Call>, StoreError>;
    /// Listens to the ids of calls that change from now on, on any instance (see [`ChangeFeed`]).
    fn changes(&self) -> broadcast::Receiver<CallId>;
    /// How many calls reached each terminal status since `since`, per `bucket_secs` of time,
    /// counted by the moment the call ended.
    async fn outcome_counts(&self, since: DateTime<Utc>, bucket_secs: u32) -> Result<Vec<OutcomeCount>, StoreError>;
    /// Calls, newest first.
    async fn list_calls(&self, query: &ListQuery) -> Result<Vec<Call>, StoreError>;
    /// A call's history, oldest first.
    async fn history(&self, id: CallId) -> Result<Vec<HistoryEntry>, StoreError>;
    /// The last joke told to this number, so it is not told twice in a row.
    async fn last_joke_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError>;
    /// Stores retry number `retry` of the chain that began with `first`, for rule `rule` if any;
    /// false when that retry already exists (the key (first, retry) keeps a retry to one call).
    async fn insert_retry(
        &self,
        call: &NewCall,
        first: CallId,
        retry: u32,
        rule: Option<RuleId>,
    ) -> Result<bool, StoreError>;
}

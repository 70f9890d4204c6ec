//! Durable state: calls, their history, recurring rules, the webhook inbox and the web's
//! sessions, behind one trait per role (calls, the dial queue, the inbox, rules, sessions), each
//! implemented by both backends in a file of the same name, so the embedded SQLite file and a
//! shared PostgreSQL database are interchangeable. Whatever depends on time (is a call due, did a lease run out, how many dials
//! went out lately) is decided by the store's own clock, so instances whose clocks disagree still
//! agree on it.

mod calls;
mod dial_queue;
mod feeds;
mod inbox;
mod limits;
mod postgres;
mod rules;
mod sessions;
mod sqlite;

use std::sync::Arc;

use crate::domain::limits::{LimitHit, Limits};

pub use calls::{CallPatch, CallStates, Calls, Inserted, ListQuery, NewCall};
pub use dial_queue::{Claimed, DialLimits, DialQueue, HeldBack, LeaseTerms, TakenOver, Takeover};
pub use feeds::{ChangeFeed, EventsLock, QueueNotice};
pub use inbox::{Inbox, InboxEvent, PendingEvent};
pub use postgres::PgStore;
pub use rules::{RuleStep, Rules, Stepped};
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

/// The store's whole contract: every role, as one database implements them all. Each part of
/// the service takes only the role it needs (the timed queue the [`DialQueue`], the rules
/// service the [`Rules`], …); wiring hands each the same store. Every method is one atomic step.
///
/// A store is opened with the ring-time limits ([`crate::domain::limits`]) and every write that
/// sets when a call rings ([`Calls::insert_call`], [`Rules::step_rule`], [`Calls::insert_retry`],
/// [`DialQueue::reschedule`]) keeps to them in the same atomic step: one that would break them
/// changes nothing and fails with [`StoreError::LimitReached`].
pub trait Store: CallLives + Sessions {}

impl<T> Store for T where T: CallLives + Sessions {}

/// What a call's life touches after it is made, for the call flow: its record and history, its
/// place in the dial queue, the webhook inbox, and the rule a retry continues; never sign-ins.
pub trait CallLives: RuleCalls + Inbox {}

impl<T> CallLives for T where T: RuleCalls + Inbox {}

/// What turning rules into calls touches, for the materialiser: the rules, the calls they make,
/// and those calls' times in the dial queue.
pub trait RuleCalls: Calls + DialQueue + Rules + Send + Sync + 'static {}

impl<T> RuleCalls for T where T: Calls + DialQueue + Rules + Send + Sync + 'static {}

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

//! The shared store: one PostgreSQL database for several instances. Claims are single statements
//! that skip rows another transaction holds (`FOR UPDATE SKIP LOCKED`); dial pacing is counted
//! under one transaction-scoped advisory lock, so the limits hold for the whole cluster; every
//! time that matters comes from the database's clock; changes are announced to the other
//! instances with `NOTIFY`.

mod calls;
mod dial_queue;
mod inbox;
mod limits;
mod notices;
mod rules;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::feeds::queue_notice_channel;
use super::{ChangeFeed, QueueNotice, StoreError};
use crate::domain::RuleId;
use crate::domain::limits::Limits;
use crate::domain::{Call, CallId, DueAt, PhoneNumber, Timezone};
use notices::{Hearers, Note};

/// Connections one instance keeps at most. Several instances share the server's limit
/// (`max_connections`, 100 by default): three instances take 3 × 16.
const POOL_SIZE: u32 = 16;

/// How many calls' events one instance applies at once. Each holds a connection (its lock's
/// transaction) while it works and needs another for its own steps, so this stays well under
/// [`POOL_SIZE`] and the pool can never be drained by lock holders waiting on each other.
const EVENT_LOCK_SLOTS: usize = 6;

const CALL_COLUMNS: &str = "id, to_number, due_at, timezone, status, attempt, call_control_id, joke, \
                            last_error, note, created_at, updated_at, rule_id, occurrence_at, retry_of, retry";

/// The PostgreSQL implementation of [`Store`]; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    changes: ChangeFeed,
    notices: broadcast::Sender<QueueNotice>,
    /// This store's name on the notices it sends, so its own listener can skip them.
    sender: String,
    event_slots: Arc<Semaphore>,
    /// How many calls may ring near one another; every write that sets when a call rings keeps to them.
    limits: Limits,
    /// Stops the listener when the last clone of the store is dropped.
    _listening: Arc<DropGuard>,
}

impl PgStore {
    /// Connects to the database `url` names (creating it if missing), applies the migrations and
    /// starts listening to the other instances; its writes keep to `limits`.
    pub async fn open(url: &str, limits: Limits) -> Result<Self, StoreError> {
        create_if_missing(url).await?;
        let pool = PgPoolOptions::new().max_connections(POOL_SIZE).connect(url).await?;
        // The migrator holds an advisory lock while it works, so instances starting together
        // apply each migration once.
        sqlx::migrate!("src/store/migrations/postgres").run(&pool).await?;
        let (changes, notices, sender) = (ChangeFeed::new(), queue_notice_channel(), uuid::Uuid::new_v4().to_string());
        let stop = CancellationToken::new();
        let hearers = Hearers { own: sender.clone(), changes: changes.clone(), queue: notices.clone() };
        let listener = notices::start_listening(&pool).await?;
        tokio::spawn(notices::listen(pool.clone(), listener, hearers, stop.clone()));
        let event_slots = Arc::new(Semaphore::new(EVENT_LOCK_SLOTS));
        Ok(Self { pool, changes, notices, sender, event_slots, limits, _listening: Arc::new(stop.drop_guard()) })
    }

    fn note(&self, note: Note) -> String {
        notices::encode(&self.sender, note)
    }
}

async fn create_if_missing(url: &str) -> Result<(), StoreError> {
    if Postgres::database_exists(url).await? {
        return Ok(());
    }
    if let Err(error) = Postgres::create_database(url).await {
        // Another instance starting at the same moment may have created it first.
        if !Postgres::database_exists(url).await? {
            return Err(error.into());
        }
    }
    Ok(())
}

/// A length of time as the fractional seconds `make_interval(secs => …)` takes.
fn secs(span: Duration) -> f64 {
    span.as_secs_f64()
}

fn call_from_row(row: &PgRow) -> Result<Call, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let to: String = row.try_get("to_number")?;
    let zone: String = row.try_get("timezone")?;
    let status: String = row.try_get("status")?;
    Ok(Call {
        id: CallId::from(row.try_get::<uuid::Uuid, _>("id")?),
        to: PhoneNumber::parse(&to).map_err(|_| corrupt("phone number"))?,
        due_at: DueAt::from_stored(row.try_get("due_at")?),
        timezone: Timezone::parse(&zone).ok_or_else(|| corrupt("time zone"))?,
        status: status.parse().map_err(|_| corrupt("status"))?,
        attempt: row.try_get::<i32, _>("attempt")?.try_into().map_err(|_| corrupt("attempt"))?,
        call_control_id: row.try_get("call_control_id")?,
        joke: row.try_get("joke")?,
        last_error: row.try_get("last_error")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        rule: row.try_get::<Option<uuid::Uuid>, _>("rule_id")?.map(RuleId::from),
        occurrence_at: row.try_get("occurrence_at")?,
        retry: retry_from_row(row)?,
    })
}

fn retry_from_row(row: &PgRow) -> Result<Option<(CallId, u32)>, StoreError> {
    let Some(first) = row.try_get::<Option<uuid::Uuid>, _>("retry_of")? else { return Ok(None) };
    let number = row.try_get::<i32, _>("retry")?.try_into().map_err(|_| StoreError::Corrupt("retry".into()))?;
    Ok(Some((CallId::from(first), number)))
}

fn calls_from_rows(rows: &[PgRow]) -> Result<Vec<Call>, StoreError> {
    rows.iter().map(call_from_row).collect()
}

/// What ties a new call to a rule's occurrence or to the call it retries; which of the two it is
/// also names the unique key that keeps it to one call.
#[derive(Debug)]
struct Link {
    rule: Option<RuleId>,
    occurrence_at: Option<DateTime<Utc>>,
    retry: Option<(CallId, u32)>,
}

fn attempt_value(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}

//! The embedded store: one SQLite file in WAL mode, for one instance. Claims run as one
//! `UPDATE … RETURNING`, which SQLite executes under its single writer lock, so a call can never
//! be claimed twice. Its clock is this instance's.
//!
//! The queue's queries name their index (`INDEXED BY calls_scheduled_due`): without statistics
//! SQLite prefers the index on (status, created_at) and would read every pending call, a million
//! of them at scale, on each claim; naming it also makes a dropped index an error, not a slowdown.

mod calls;
mod dial_queue;
mod inbox;
mod limits;
mod locks;
mod rules;
mod sessions;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use tokio::sync::broadcast;

use super::feeds::queue_notice_channel;
use super::{ChangeFeed, InboxEvent, NewCall, QueueNotice, StoreError};
use crate::domain::RuleId;
use crate::domain::clock::Clock;
use crate::domain::limits::Limits;
use crate::domain::{Call, CallId, DueAt, HistoryEntry, PhoneNumber, Timezone};
use locks::EventsLocks;

const CALL_COLUMNS: &str = "id, to_number, due_at, timezone, status, attempt, call_control_id, joke, \
                            last_error, note, created_at, updated_at, rule_id, occurrence_at, retry_of, retry";

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    changes: ChangeFeed,
    /// Never sent on: no other instance shares the file.
    notices: broadcast::Sender<QueueNotice>,
    events_locks: EventsLocks,
    /// The store's clock: this instance's, or a test's.
    clock: Clock,
    /// How many calls may ring near one another; every write that sets when a call rings keeps to them.
    limits: Limits,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and applies the migrations; its
    /// writes keep to `limits`.
    pub async fn open(path: &str, limits: Limits) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Clock::Instance, limits).await
    }

    /// Like [`SqliteStore::open`], with the store's time read from `clock`.
    pub async fn open_with_clock(path: &str, clock: Clock, limits: Limits) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // A pooled SQLite connection is a file handle, not a socket that can go stale: pinging it
        // before each use (sqlx's default) only added a round trip to its worker thread per query.
        let pool = SqlitePoolOptions::new().max_connections(8).test_before_acquire(false).connect_with(options).await?;
        sqlx::migrate!("src/store/migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            changes: ChangeFeed::new(),
            notices: queue_notice_channel(),
            events_locks: EventsLocks::default(),
            clock,
            limits,
        })
    }
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(super) fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

pub(super) fn call_from_row(row: &SqliteRow) -> Result<Call, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let id: String = row.try_get("id")?;
    let to: String = row.try_get("to_number")?;
    let zone: String = row.try_get("timezone")?;
    let status: String = row.try_get("status")?;
    Ok(Call {
        id: id.parse().map_err(|_| corrupt("call id"))?,
        to: PhoneNumber::from_stored(to).ok_or_else(|| corrupt("phone number"))?,
        due_at: DueAt::from_stored(from_millis(row.try_get("due_at")?)?),
        timezone: Timezone::parse(&zone).ok_or_else(|| corrupt("time zone"))?,
        status: status.parse().map_err(|_| corrupt("status"))?,
        attempt: row.try_get::<i64, _>("attempt")?.try_into().map_err(|_| corrupt("attempt"))?,
        call_control_id: row.try_get("call_control_id")?,
        joke: row.try_get("joke")?,
        last_error: row.try_get("last_error")?,
        note: row.try_get("note")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        rule: row
            .try_get::<Option<String>, _>("rule_id")?
            .map(|id| id.parse())
            .transpose()
            .map_err(|_| corrupt("rule id"))?,
        occurrence_at: row.try_get::<Option<i64>, _>("occurrence_at")?.map(from_millis).transpose()?,
        retry: retry_from_row(row)?,
    })
}

fn retry_from_row(row: &SqliteRow) -> Result<Option<(CallId, u32)>, StoreError> {
    let Some(first) = row.try_get::<Option<String>, _>("retry_of")? else { return Ok(None) };
    let first = first.parse().map_err(|_| StoreError::Corrupt("retry_of".into()))?;
    let number = row.try_get::<i64, _>("retry")?.try_into().map_err(|_| StoreError::Corrupt("retry".into()))?;
    Ok(Some((first, number)))
}

pub(super) fn calls_from_rows(rows: &[SqliteRow]) -> Result<Vec<Call>, StoreError> {
    rows.iter().map(call_from_row).collect()
}

async fn insert_inbox<'e, E>(executor: E, event: &InboxEvent) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let inserted = sqlx::query(
        "INSERT INTO inbox (event_id, call_key, event_type, body, received_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.event_id)
    .bind(&event.call_key)
    .bind(&event.event_type)
    .bind(&event.body)
    .bind(millis(event.received_at))
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub(super) async fn insert_history<'e, E>(executor: E, id: CallId, entry: &HistoryEntry) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query("INSERT INTO call_events (call_id, at, kind, detail) VALUES (?, ?, ?, ?)")
        .bind(id.to_string())
        .bind(millis(entry.time))
        .bind(&entry.kind)
        .bind(&entry.detail)
        .execute(executor)
        .await?;
    Ok(())
}

/// What ties a new call to a rule or to the call it retries.
#[derive(Debug, Default)]
struct Link {
    rule: Option<RuleId>,
    occurrence_at: Option<DateTime<Utc>>,
    retry: Option<(CallId, u32)>,
}

/// Inserts a scheduled call with its first history entry, unless the unique key `conflict`
/// names (the idempotency key, the rule's occurrence, the retry) is taken; false then. A call
/// that would break `limits` is refused: `conn` must be a transaction begun [`limits::IMMEDIATE`],
/// which the refusal rolls back.
async fn insert_call_row(
    conn: &mut SqliteConnection,
    call: &NewCall,
    link: &Link,
    conflict: &str,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<bool, StoreError> {
    let schedule = &call.schedule;
    let sql = format!(
        "INSERT INTO calls (id, to_number, due_at, timezone, status, note, idempotency_key, request_hash, \
         created_at, updated_at, rule_id, occurrence_at, retry_of, retry) \
         VALUES (?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT ({conflict}) DO NOTHING"
    );
    let inserted = sqlx::query(&sql)
        .bind(call.id.to_string())
        .bind(schedule.to.as_str())
        .bind(millis(schedule.due_at.instant()))
        .bind(schedule.timezone.name())
        .bind(&schedule.note)
        .bind(call.idempotency.as_ref().map(|(key, _)| key))
        .bind(call.idempotency.as_ref().map(|(_, hash)| hash))
        .bind(millis(now))
        .bind(millis(now))
        .bind(link.rule.map(|id| id.to_string()))
        .bind(link.occurrence_at.map(millis))
        .bind(link.retry.map(|(first, _)| first.to_string()))
        .bind(link.retry.map_or(0, |(_, number)| i64::from(number)))
        .execute(&mut *conn)
        .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    limits::admit(&mut *conn, limits, call.id, &schedule.to, schedule.due_at.instant()).await?;
    let entry = HistoryEntry { kind: "scheduled".into(), time: now, detail: schedule.note.clone() };
    insert_history(&mut *conn, call.id, &entry).await?;
    Ok(true)
}

impl SqliteStore {
    async fn call_where(&self, clause: &str, value: &str) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE {clause} = ?");
        let row = sqlx::query(&sql).bind(value).fetch_optional(&self.pool).await?;
        row.as_ref().map(call_from_row).transpose()
    }
}

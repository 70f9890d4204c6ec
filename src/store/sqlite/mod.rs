//! The embedded store: one SQLite file in WAL mode, for one instance. Claims run as one
//! `UPDATE … RETURNING`, which SQLite executes under its single writer lock, so a call can never
//! be claimed twice. Its clock is this instance's.
//!
//! The queue's queries name their index (`INDEXED BY calls_scheduled_due`): without statistics
//! SQLite prefers the index on (status, created_at) and would read every pending call, a million
//! of them at scale, on each claim; naming it also makes a dropped index an error, not a slowdown.

mod dialing;
mod limits;
mod locks;
mod rules;
mod sessions;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use tokio::sync::broadcast;

use super::feeds::queue_notice_channel;
use super::{
    CallPatch, ChangeFeed, Claimed, DialLimits, EventsLock, InboxEvent, Inserted, LeaseTerms, ListQuery, NewCall,
    PendingEvent, QueueNotice, RuleStep, Stepped, Store, StoreError, TakenOver, Takeover,
};
use crate::domain::clock::Clock;
use crate::domain::limits::Limits;
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, DueAt, HistoryEntry, PhoneNumber, Timezone};
use crate::domain::{NewRule, Rule, RuleId, RuleStatus};
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

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(skip(self))]
    async fn find_idempotent(&self, key: &str) -> Result<Option<(Call, String)>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS}, request_hash FROM calls WHERE idempotency_key = ?");
        let Some(row) = sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let hash: Option<String> = row.try_get("request_hash")?;
        Ok(Some((call_from_row(&row)?, hash.unwrap_or_default())))
    }

    #[tracing::instrument(skip(self))]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.clock.now())
    }

    #[tracing::instrument(skip(self, call), fields(call_id = %call.id))]
    async fn insert_call(&self, call: &NewCall) -> Result<Inserted, StoreError> {
        if let Some((key, _)) = &call.idempotency
            && let Some((existing, hash)) = self.find_idempotent(key).await?
        {
            return Ok(Inserted::Existing(existing, hash));
        }
        let now = self.clock.now();
        let mut tx = self.pool.begin_with(limits::IMMEDIATE).await?;
        let inserted = insert_call_row(&mut tx, call, &Link::default(), "idempotency_key", now, &self.limits).await?;
        if !inserted {
            // Another request with the same key won the race: answer with its call.
            tx.rollback().await?;
            let key = call.idempotency.as_ref().map(|(key, _)| key.as_str()).unwrap_or_default();
            let (existing, hash) = self.find_idempotent(key).await?.ok_or_else(|| StoreError::Corrupt(key.into()))?;
            return Ok(Inserted::Existing(existing, hash));
        }
        tx.commit().await?;
        self.changes.publish(call.id);
        let stored = self.get_call(call.id).await?.ok_or_else(|| StoreError::Corrupt("lost insert".into()))?;
        Ok(Inserted::Created(stored))
    }

    #[tracing::instrument(skip(self), fields(call_id = %id))]
    async fn get_call(&self, id: CallId) -> Result<Option<Call>, StoreError> {
        self.call_where("id", &id.to_string()).await
    }

    #[tracing::instrument(skip(self))]
    async fn find_by_call_control_id(&self, id: &str) -> Result<Option<Call>, StoreError> {
        self.call_where("call_control_id", id).await
    }

    fn changes(&self) -> broadcast::Receiver<CallId> {
        self.changes.subscribe()
    }

    fn queue_notices(&self) -> broadcast::Receiver<QueueNotice> {
        self.notices.subscribe()
    }

    #[tracing::instrument(skip(self))]
    async fn outcome_counts(&self, since: DateTime<Utc>, bucket_secs: u32) -> Result<Vec<OutcomeCount>, StoreError> {
        let bucket_ms = i64::from(bucket_secs.max(1)) * 1000;
        let terminal: Vec<&str> = CallStatus::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.as_str()).collect();
        // The statuses are our own fixed names, so listing them inline is safe.
        let sql = format!(
            "SELECT (updated_at / ?1) * ?1 AS bucket, status, COUNT(*) AS n FROM calls \
             WHERE updated_at >= ?2 AND status IN ('{}') GROUP BY bucket, status ORDER BY bucket",
            terminal.join("', '")
        );
        let rows = sqlx::query(&sql).bind(bucket_ms).bind(millis(since)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(OutcomeCount {
                    bucket_start: from_millis(row.try_get("bucket")?)?,
                    status: status.parse().map_err(|_| StoreError::Corrupt("status".into()))?,
                    count: row.try_get::<i64, _>("n")?.try_into().unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    #[tracing::instrument(skip(self))]
    async fn list_calls(&self, query: &ListQuery) -> Result<Vec<Call>, StoreError> {
        // The file keeps milliseconds: calls created within one are ordered by insertion (rowid).
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE (?1 IS NULL OR status = ?1) \
             ORDER BY created_at DESC, rowid DESC LIMIT ?2 OFFSET ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(query.status.map(CallStatus::as_str))
            .bind(i64::from(query.limit))
            .bind(i64::from(query.offset))
            .fetch_all(&self.pool)
            .await?;
        calls_from_rows(&rows)
    }

    #[tracing::instrument(skip(self), fields(call_id = %id))]
    async fn history(&self, id: CallId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, detail FROM call_events WHERE call_id = ? ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    kind: row.try_get("kind")?,
                    time: from_millis(row.try_get("at")?)?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip(self, patch, entry), fields(call_id = %id, %from, %to))]
    async fn change_status(
        &self,
        id: CallId,
        from: CallStatus,
        to: CallStatus,
        patch: &CallPatch,
        entry: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE calls SET status = ?, call_control_id = COALESCE(?, call_control_id), \
             joke = COALESCE(?, joke), last_error = COALESCE(?, last_error), updated_at = ?, \
             lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = ?",
        )
        .bind(to.as_str())
        .bind(&patch.call_control_id)
        .bind(&patch.joke)
        .bind(&patch.last_error)
        .bind(millis(self.clock.now()))
        .bind(id.to_string())
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Ok(false);
        }
        insert_history(&mut *tx, id, entry).await?;
        tx.commit().await?;
        self.changes.publish(id);
        Ok(true)
    }

    #[tracing::instrument(skip(self, entry), fields(call_id = %id, kind = %entry.kind))]
    async fn append_history(&self, id: CallId, entry: &HistoryEntry) -> Result<(), StoreError> {
        insert_history(&self.pool, id, entry).await?;
        self.changes.publish(id);
        Ok(())
    }

    async fn next_due(&self, limit: u32) -> Result<Vec<(CallId, DueAt)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, due_at FROM calls INDEXED BY calls_scheduled_due WHERE status = 'scheduled' \
             ORDER BY due_at LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let id = id.parse().map_err(|_| StoreError::Corrupt("call id".into()))?;
                Ok((id, DueAt::from_stored(from_millis(row.try_get("due_at")?)?)))
            })
            .collect()
    }

    #[tracing::instrument(skip(self, limits))]
    async fn claim_due(&self, terms: &LeaseTerms, limit: u32, limits: &DialLimits) -> Result<Claimed, StoreError> {
        self.claim(terms, limit, limits).await
    }

    #[tracing::instrument(skip(self, terms), fields(call_id = %id))]
    async fn renew_lease(&self, id: CallId, terms: &LeaseTerms, attempt: u32) -> Result<bool, StoreError> {
        self.renew(id, terms, attempt).await
    }

    #[tracing::instrument(skip(self))]
    async fn mark_missed(&self, grace: Duration) -> Result<Vec<CallId>, StoreError> {
        self.missed(grace).await
    }

    async fn orphaned_dials(&self, owner: Option<&str>) -> Result<Vec<Call>, StoreError> {
        self.orphans(owner).await
    }

    #[tracing::instrument(skip(self, terms, limits), fields(call_id = %id))]
    async fn take_over_dial(
        &self,
        id: CallId,
        terms: &LeaseTerms,
        limits: &DialLimits,
        takeover: &Takeover,
    ) -> Result<Option<TakenOver>, StoreError> {
        self.take_over(id, terms, limits, takeover).await
    }

    async fn last_joke_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        let joke = sqlx::query_scalar(
            "SELECT joke FROM calls WHERE to_number = ? AND joke IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(to.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(joke)
    }

    #[tracing::instrument(skip(self, event), fields(event_id = %event.event_id))]
    async fn inbox_insert(&self, event: &InboxEvent) -> Result<bool, StoreError> {
        insert_inbox(&self.pool, event).await
    }

    async fn inbox_insert_group(&self, events: &[InboxEvent]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            fresh.push(insert_inbox(&mut *tx, event).await?);
        }
        tx.commit().await?;
        Ok(fresh)
    }

    async fn inbox_pending(&self, call_key: &str) -> Result<Vec<PendingEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, body, attempts FROM inbox WHERE call_key = ? AND processed_at IS NULL ORDER BY seq",
        )
        .bind(call_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingEvent {
                    seq: row.try_get("seq")?,
                    body: row.try_get("body")?,
                    attempts: row.try_get::<i64, _>("attempts")?.try_into().unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn inbox_pending_keys(&self) -> Result<Vec<String>, StoreError> {
        let keys = sqlx::query_scalar("SELECT DISTINCT call_key FROM inbox WHERE processed_at IS NULL")
            .fetch_all(&self.pool)
            .await?;
        Ok(keys)
    }

    async fn inbox_finish(&self, seq: i64, error: Option<&str>, give_up: bool) -> Result<(), StoreError> {
        let close = error.is_none() || give_up;
        sqlx::query(
            "UPDATE inbox SET processed_at = CASE WHEN ? THEN ? ELSE NULL END, \
             attempts = attempts + CASE WHEN ? IS NULL THEN 0 ELSE 1 END, last_error = COALESCE(?, last_error) \
             WHERE seq = ?",
        )
        .bind(close)
        .bind(millis(self.clock.now()))
        .bind(error)
        .bind(error)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lock_events(&self, call_key: &str) -> Result<Option<EventsLock>, StoreError> {
        Ok(self.events_locks.try_hold(call_key))
    }

    async fn due_calls(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Call>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls INDEXED BY calls_scheduled_due WHERE status = 'scheduled' \
             AND due_at <= ? ORDER BY due_at LIMIT ?"
        );
        let rows = sqlx::query(&sql).bind(millis(now)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        calls_from_rows(&rows)
    }

    #[tracing::instrument(skip(self, entry), fields(call_id = %id))]
    async fn reschedule(&self, id: CallId, from: DueAt, to: DueAt, entry: &HistoryEntry) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with(limits::IMMEDIATE).await?;
        let moved: Option<String> = sqlx::query_scalar(
            "UPDATE calls SET due_at = ?, updated_at = ? WHERE id = ? AND status = 'scheduled' AND due_at = ? \
             RETURNING to_number",
        )
        .bind(millis(to.instant()))
        .bind(millis(self.clock.now()))
        .bind(id.to_string())
        .bind(millis(from.instant()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(number) = moved else { return Ok(false) };
        let number = PhoneNumber::from_stored(number).ok_or_else(|| StoreError::Corrupt("phone number".into()))?;
        limits::admit(&mut tx, &self.limits, id, &number, to.instant()).await?;
        insert_history(&mut *tx, id, entry).await?;
        tx.commit().await?;
        self.changes.publish(id);
        Ok(true)
    }

    #[tracing::instrument(skip(self, call), fields(call_id = %call.id, %first, retry))]
    async fn insert_retry(
        &self,
        call: &NewCall,
        first: CallId,
        retry: u32,
        rule: Option<RuleId>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with(limits::IMMEDIATE).await?;
        let link = Link { rule, occurrence_at: None, retry: Some((first, retry)) };
        let created = insert_call_row(&mut tx, call, &link, "retry_of, retry", self.clock.now(), &self.limits).await?;
        tx.commit().await?;
        if created {
            self.changes.publish(call.id);
        }
        Ok(created)
    }

    async fn insert_rule(&self, rule: &NewRule, now: DateTime<Utc>) -> Result<Rule, StoreError> {
        self.insert_rule_row(rule, now).await
    }

    async fn get_rule(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        self.rule_by_id(id).await
    }

    async fn list_rules(&self) -> Result<Vec<Rule>, StoreError> {
        self.all_rules().await
    }

    async fn set_rule_status(
        &self,
        id: RuleId,
        status: RuleStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Rule>, StoreError> {
        self.change_rule_status(id, status, now).await
    }

    async fn delete_rule(&self, id: RuleId) -> Result<bool, StoreError> {
        self.remove_rule(id).await
    }

    async fn rules_to_materialise(&self, late_before: DateTime<Utc>) -> Result<Vec<Rule>, StoreError> {
        self.rules_needing_calls(late_before).await
    }

    async fn step_rule(&self, step: &RuleStep) -> Result<Stepped, StoreError> {
        self.apply_rule_step(step).await
    }
}

//! Storing calls and their history on PostgreSQL. Each change is one statement that also writes
//! the history entry and announces the change, so the other instances hear of exactly what
//! committed. History is stamped with the database's clock, like everything else here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::broadcast;

use super::notices::{CHANNEL, Note};
use super::{CALL_COLUMNS, Link, PgStore, attempt_value, call_from_row, calls_from_rows, limits};
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, HistoryEntry, PhoneNumber, RuleId};
use crate::store::{CallPatch, CallStates, Calls, Inserted, ListQuery, NewCall, StoreError};

impl PgStore {
    /// Inserts a scheduled call for a rule's occurrence or as a retry, with its first history
    /// entry and its announcement, unless a call for that occurrence or that retry exists (the
    /// unique keys (rule_id, occurrence_at) and (retry_of, retry)); false then. A call that would
    /// break the store's limits is refused, which rolls `tx` back. The caller publishes the change
    /// once `tx` has committed.
    pub(super) async fn insert_linked(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        call: &NewCall,
        link: &Link,
    ) -> Result<bool, StoreError> {
        limits::lock(tx, &self.limits, &call.schedule.to).await?;
        let conflict = if link.retry.is_some() { "retry_of, retry" } else { "rule_id, occurrence_at" };
        let schedule = &call.schedule;
        let sql = format!(
            "WITH inserted AS (INSERT INTO calls (id, to_number, due_at, timezone, status, note, created_at, \
             updated_at, rule_id, occurrence_at, retry_of, retry) \
             VALUES ($1, $2, $3, $4, 'scheduled', $5, now(), now(), $6, $7, $8, $9) \
             ON CONFLICT ({conflict}) DO NOTHING RETURNING id, created_at, note), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) \
             SELECT id, created_at, 'scheduled', note FROM inserted), \
             announced AS (SELECT pg_notify('{CHANNEL}', $10) FROM inserted) \
             SELECT COUNT(*) FROM announced"
        );
        let inserted: i64 = sqlx::query_scalar(&sql)
            .bind(call.id.as_uuid())
            .bind(schedule.to.as_str())
            .bind(schedule.due_at.instant())
            .bind(schedule.timezone.name())
            .bind(&schedule.note)
            .bind(link.rule.map(|id| id.as_uuid()))
            .bind(link.occurrence_at)
            .bind(link.retry.map(|(first, _)| first.as_uuid()))
            .bind(link.retry.map_or(0, |(_, number)| attempt_value(number)))
            .bind(self.note(Note::Scheduled(call.id, schedule.due_at)))
            .fetch_one(&mut **tx)
            .await?;
        if inserted == 0 {
            return Ok(false);
        }
        limits::admit(tx, &self.limits, call.id, &schedule.to, schedule.due_at.instant()).await?;
        Ok(true)
    }
}

#[async_trait]
impl CallStates for PgStore {
    async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&self.pool).await?)
    }

    #[tracing::instrument(skip(self), fields(call_id = %id))]
    async fn get_call(&self, id: CallId) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.as_uuid()).fetch_optional(&self.pool).await?;
        row.as_ref().map(call_from_row).transpose()
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
        let note = if to == CallStatus::Cancelled { Note::Cancelled(id) } else { Note::Changed(id) };
        let sql = format!(
            "WITH changed AS (UPDATE calls SET status = $1, call_control_id = COALESCE($2, call_control_id), \
             joke = COALESCE($3, joke), last_error = COALESCE($4, last_error), updated_at = now(), \
             lease_owner = NULL, lease_until = NULL WHERE id = $5 AND status = $6 RETURNING id), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) SELECT id, now(), $7, $8 FROM changed), \
             announced AS (SELECT pg_notify('{CHANNEL}', $9) FROM changed) \
             SELECT COUNT(*) FROM announced"
        );
        let changed: i64 = sqlx::query_scalar(&sql)
            .bind(to.as_str())
            .bind(&patch.call_control_id)
            .bind(&patch.joke)
            .bind(&patch.last_error)
            .bind(id.as_uuid())
            .bind(from.as_str())
            .bind(&entry.kind)
            .bind(&entry.detail)
            .bind(self.note(note))
            .fetch_one(&self.pool)
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        self.changes.publish(id);
        Ok(true)
    }
    #[tracing::instrument(skip(self, entry), fields(call_id = %id, kind = %entry.kind))]
    async fn append_history(&self, id: CallId, entry: &HistoryEntry) -> Result<(), StoreError> {
        let sql = format!(
            "WITH history AS (INSERT INTO call_events (call_id, at, kind, detail) VALUES ($1, now(), $2, $3) \
             RETURNING call_id) SELECT pg_notify('{CHANNEL}', $4) FROM history"
        );
        sqlx::query(&sql)
            .bind(id.as_uuid())
            .bind(&entry.kind)
            .bind(&entry.detail)
            .bind(self.note(Note::Changed(id)))
            .execute(&self.pool)
            .await?;
        self.changes.publish(id);
        Ok(())
    }
}

#[async_trait]
impl Calls for PgStore {
    #[tracing::instrument(skip(self))]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip(self, call), fields(call_id = %call.id))]
    async fn insert_call(&self, call: &NewCall) -> Result<Inserted, StoreError> {
        if let Some((key, _)) = &call.idempotency
            && let Some((existing, hash)) = self.find_idempotent(key).await?
        {
            return Ok(Inserted::Existing(existing, hash));
        }
        let schedule = &call.schedule;
        let sql = format!(
            "WITH inserted AS (INSERT INTO calls (id, to_number, due_at, timezone, status, note, idempotency_key, \
             request_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, 'scheduled', $5, $6, $7, now(), now()) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING {CALL_COLUMNS}), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) \
             SELECT id, created_at, 'scheduled', note FROM inserted), \
             announced AS (SELECT pg_notify('{CHANNEL}', $8) FROM inserted) \
             SELECT {CALL_COLUMNS}, (SELECT COUNT(*) FROM announced) AS announced FROM inserted"
        );
        let mut tx = self.pool.begin().await?;
        limits::lock(&mut tx, &self.limits, &schedule.to).await?;
        let row = sqlx::query(&sql)
            .bind(call.id.as_uuid())
            .bind(schedule.to.as_str())
            .bind(schedule.due_at.instant())
            .bind(schedule.timezone.name())
            .bind(&schedule.note)
            .bind(call.idempotency.as_ref().map(|(key, _)| key))
            .bind(call.idempotency.as_ref().map(|(_, hash)| hash))
            .bind(self.note(Note::Scheduled(call.id, schedule.due_at)))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            // Another request with the same key won the race: answer with its call.
            tx.rollback().await?;
            let key = call.idempotency.as_ref().map(|(key, _)| key.as_str()).unwrap_or_default();
            let (existing, hash) = self.find_idempotent(key).await?.ok_or_else(|| StoreError::Corrupt(key.into()))?;
            return Ok(Inserted::Existing(existing, hash));
        };
        limits::admit(&mut tx, &self.limits, call.id, &schedule.to, schedule.due_at.instant()).await?;
        tx.commit().await?;
        self.changes.publish(call.id);
        Ok(Inserted::Created(call_from_row(&row)?))
    }
    #[tracing::instrument(skip(self))]
    async fn find_idempotent(&self, key: &str) -> Result<Option<(Call, String)>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS}, request_hash FROM calls WHERE idempotency_key = $1");
        let Some(row) = sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let hash: Option<String> = row.try_get("request_hash")?;
        Ok(Some((call_from_row(&row)?, hash.unwrap_or_default())))
    }
    #[tracing::instrument(skip(self))]
    async fn find_by_call_control_id(&self, id: &str) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE call_control_id = $1 LIMIT 1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(call_from_row).transpose()
    }

    fn changes(&self) -> broadcast::Receiver<CallId> {
        self.changes.subscribe()
    }

    #[tracing::instrument(skip(self))]
    async fn outcome_counts(&self, since: DateTime<Utc>, bucket_secs: u32) -> Result<Vec<OutcomeCount>, StoreError> {
        let terminal: Vec<&str> = CallStatus::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.as_str()).collect();
        // The statuses are our own fixed names, so listing them inline is safe.
        let sql = format!(
            "SELECT to_timestamp(floor(extract(epoch FROM updated_at) / $1) * $1) AS bucket, status, COUNT(*) AS n \
             FROM calls WHERE updated_at >= $2 AND status IN ('{}') GROUP BY bucket, status ORDER BY bucket",
            terminal.join("', '")
        );
        let rows = sqlx::query(&sql).bind(f64::from(bucket_secs.max(1))).bind(since).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(OutcomeCount {
                    bucket_start: row.try_get("bucket")?,
                    status: status.parse().map_err(|_| StoreError::Corrupt("status".into()))?,
                    count: row.try_get::<i64, _>("n")?.try_into().unwrap_or(u32::MAX),
                })
            })
            .collect()
    }
    #[tracing::instrument(skip(self))]
    async fn list_calls(&self, query: &ListQuery) -> Result<Vec<Call>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE ($1::text IS NULL OR status = $1) \
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
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
        let rows = sqlx::query("SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY seq")
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    kind: row.try_get("kind")?,
                    time: row.try_get("at")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn last_joke_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        let joke = sqlx::query_scalar(
            "SELECT joke FROM calls WHERE to_number = $1 AND joke IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(to.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(joke)
    }

    #[tracing::instrument(skip(self, call), fields(call_id = %call.id, %first, retry))]
    async fn insert_retry(
        &self,
        call: &NewCall,
        first: CallId,
        retry: u32,
        rule: Option<RuleId>,
    ) -> Result<bool, StoreError> {
        let link = Link { rule, occurrence_at: None, retry: Some((first, retry)) };
        let mut tx = self.pool.begin().await?;
        let created = self.insert_linked(&mut tx, call, &link).await?;
        tx.commit().await?;
        if created {
            self.changes.publish(call.id);
        }
        Ok(created)
    }
}

//! Storing calls and their history on PostgreSQL. Each change is one statement that also writes
//! the history entry and announces the change, so the other instances hear of exactly what
//! committed. History is stamped with the database's clock, like everything else here.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

use super::notices::{CHANNEL, Note};
use super::{CALL_COLUMNS, Link, PgStore, attempt_value, call_from_row, limits};
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, DueAt, HistoryEntry, PhoneNumber};
use crate::store::{CallPatch, Inserted, NewCall, StoreError};

impl PgStore {
    pub(super) async fn insert(&self, call: &NewCall) -> Result<Inserted, StoreError> {
        if let Some((key, _)) = &call.idempotency
            && let Some((existing, hash)) = self.idempotent(key).await?
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
            let (existing, hash) = self.idempotent(key).await?.ok_or_else(|| StoreError::Corrupt(key.into()))?;
            return Ok(Inserted::Existing(existing, hash));
        };
        limits::admit(&mut tx, &self.limits, call.id, &schedule.to, schedule.due_at.instant()).await?;
        tx.commit().await?;
        self.changes.publish(call.id);
        Ok(Inserted::Created(call_from_row(&row)?))
    }

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

    /// Moves a still-scheduled call from `from` to `to`, with its history entry and announcement,
    /// unless the move would break the store's limits.
    pub(super) async fn move_due(
        &self,
        id: CallId,
        from: DueAt,
        to: DueAt,
        entry: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        let number: Option<String> = sqlx::query_scalar("SELECT to_number FROM calls WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        let Some(number) = number else { return Ok(false) };
        let number = PhoneNumber::from_stored(number).ok_or_else(|| StoreError::Corrupt("phone number".into()))?;
        let sql = format!(
            "WITH moved AS (UPDATE calls SET due_at = $1, updated_at = now() \
             WHERE id = $2 AND status = 'scheduled' AND due_at = $3 RETURNING id), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) SELECT id, now(), $4, $5 FROM moved), \
             announced AS (SELECT pg_notify('{CHANNEL}', $6) FROM moved) \
             SELECT COUNT(*) FROM announced"
        );
        let mut tx = self.pool.begin().await?;
        limits::lock(&mut tx, &self.limits, &number).await?;
        let moved: i64 = sqlx::query_scalar(&sql)
            .bind(to.instant())
            .bind(id.as_uuid())
            .bind(from.instant())
            .bind(&entry.kind)
            .bind(&entry.detail)
            .bind(self.note(Note::Scheduled(id, to)))
            .fetch_one(&mut *tx)
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        limits::admit(&mut tx, &self.limits, id, &number, to.instant()).await?;
        tx.commit().await?;
        self.changes.publish(id);
        Ok(true)
    }

    pub(super) async fn idempotent(&self, key: &str) -> Result<Option<(Call, String)>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS}, request_hash FROM calls WHERE idempotency_key = $1");
        let Some(row) = sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let hash: Option<String> = row.try_get("request_hash")?;
        Ok(Some((call_from_row(&row)?, hash.unwrap_or_default())))
    }

    pub(super) async fn outcomes(
        &self,
        since: DateTime<Utc>,
        bucket_secs: u32,
    ) -> Result<Vec<OutcomeCount>, StoreError> {
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

    pub(super) async fn change(
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

    pub(super) async fn append(&self, id: CallId, entry: &HistoryEntry) -> Result<(), StoreError> {
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

//! The sqlite side of [`Calls`] and [`CallStates`]: calls, their history and their status changes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio::sync::broadcast;

use super::{
    CALL_COLUMNS, Link, SqliteStore, call_from_row, calls_from_rows, from_millis, insert_call_row, insert_history,
    limits, millis,
};
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, HistoryEntry, PhoneNumber, RuleId};
use crate::store::{CallPatch, CallStates, Calls, Inserted, ListQuery, NewCall, StoreError};

#[async_trait]
impl CallStates for SqliteStore {
    async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.clock.now())
    }

    #[tracing::instrument(skip(self), fields(call_id = %id))]
    async fn get_call(&self, id: CallId) -> Result<Option<Call>, StoreError> {
        self.call_where("id", &id.to_string()).await
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
}

#[async_trait]
impl Calls for SqliteStore {
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

    #[tracing::instrument(skip(self))]
    async fn find_by_call_control_id(&self, id: &str) -> Result<Option<Call>, StoreError> {
        self.call_where("call_control_id", id).await
    }

    fn changes(&self) -> broadcast::Receiver<CallId> {
        self.changes.subscribe()
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

    async fn last_joke_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        let joke = sqlx::query_scalar(
            "SELECT joke FROM calls WHERE to_number = ? AND joke IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
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
        let mut tx = self.pool.begin_with(limits::IMMEDIATE).await?;
        let link = Link { rule, occurrence_at: None, retry: Some((first, retry)) };
        let created = insert_call_row(&mut tx, call, &link, "retry_of, retry", self.clock.now(), &self.limits).await?;
        tx.commit().await?;
        if created {
            self.changes.publish(call.id);
        }
        Ok(created)
    }
}

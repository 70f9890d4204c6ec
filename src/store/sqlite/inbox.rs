//! The sqlite side of the webhook [`Inbox`]: events recorded once by id, applied in arrival order.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, insert_inbox, millis};
use crate::store::{EventsLock, Inbox, InboxEvent, PendingEvent, StoreError};

#[async_trait]
impl Inbox for SqliteStore {
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
}

//! The webhook inbox on PostgreSQL, shared by every instance: an event is recorded once whichever
//! instance received it (unique event id), and one call's events are applied by one instance at a
//! time under a transaction-scoped advisory lock on the call's key. If that instance dies, its
//! connection closes, the transaction rolls back, the lock is free again and the events are still
//! pending, for any instance's housekeeping to apply.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::OwnedSemaphorePermit;

use super::PgStore;
use crate::store::feeds::HeldLock;
use crate::store::{EventsLock, Inbox, InboxEvent, PendingEvent, StoreError};

/// A held events lock: its transaction and the slot it takes from this instance's share of
/// connections.
struct PgEventsLock {
    tx: Transaction<'static, Postgres>,
    _slot: OwnedSemaphorePermit,
}

#[async_trait]
impl HeldLock for PgEventsLock {
    async fn release(self: Box<Self>) {
        if let Err(error) = self.tx.commit().await {
            // The connection is then dropped, which releases the lock all the same.
            tracing::warn!(error = ?error, "could not release an events lock cleanly");
        }
    }
}

#[async_trait]
impl Inbox for PgStore {
    #[tracing::instrument(skip(self, event), fields(event_id = %event.event_id))]
    async fn inbox_insert(&self, event: &InboxEvent) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO inbox (event_id, call_key, event_type, body, received_at) VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(&event.call_key)
        .bind(&event.event_type)
        .bind(&event.body)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }
    async fn inbox_pending(&self, call_key: &str) -> Result<Vec<PendingEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, body, attempts FROM inbox WHERE call_key = $1 AND processed_at IS NULL ORDER BY seq",
        )
        .bind(call_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingEvent {
                    seq: row.try_get("seq")?,
                    body: row.try_get("body")?,
                    attempts: row.try_get::<i32, _>("attempts")?.try_into().unwrap_or(u32::MAX),
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
            "UPDATE inbox SET processed_at = CASE WHEN $1 THEN now() ELSE NULL END, \
             attempts = attempts + CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END, \
             last_error = COALESCE($2, last_error) WHERE seq = $3",
        )
        .bind(close)
        .bind(error)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
    async fn lock_events(&self, call_key: &str) -> Result<Option<EventsLock>, StoreError> {
        let slot = self.event_slots.clone().acquire_owned().await.expect("the slots are never closed");
        let mut tx = self.pool.begin().await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(call_key)
            .fetch_one(&mut *tx)
            .await?;
        if !held {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(EventsLock::held(Box::new(PgEventsLock { tx, _slot: slot }))))
    }
    #[tracing::instrument(skip(self, events), fields(count = events.len()))]
    async fn inbox_insert_group(&self, events: &[InboxEvent]) -> Result<Vec<bool>, StoreError> {
        let column = |field: fn(&InboxEvent) -> &str| events.iter().map(field).collect::<Vec<_>>();
        let bodies: Vec<&[u8]> = events.iter().map(|event| event.body.as_slice()).collect();
        // Rows go in (and take their `seq`) in the group's order, which is arrival order.
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO inbox (event_id, call_key, event_type, body, received_at) \
             SELECT e.event_id, e.call_key, e.event_type, e.body, now() \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY \
             AS e(event_id, call_key, event_type, body, n) ORDER BY e.n \
             ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        )
        .bind(column(|event| &event.event_id))
        .bind(column(|event| &event.call_key))
        .bind(column(|event| &event.event_type))
        .bind(bodies)
        .fetch_all(&self.pool)
        .await?;
        let mut fresh: HashSet<String> = inserted.into_iter().collect();
        Ok(events.iter().map(|event| fresh.remove(&event.event_id)).collect())
    }
}

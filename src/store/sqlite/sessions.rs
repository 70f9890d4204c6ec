//! The SQLite side of [`Sessions`]: a one-row table for the server secret and a table of
//! session keys with their expiry (milliseconds, by this instance's clock).

use std::time::Duration;

use async_trait::async_trait;

use super::{SqliteStore, millis};
use crate::store::{Sessions, StoreError};

#[async_trait]
impl Sessions for SqliteStore {
    async fn server_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING")
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT secret FROM server_secret WHERE id = 1").fetch_one(&self.pool).await?)
    }

    #[tracing::instrument(skip_all)]
    async fn start_session(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(ttl).map_err(|_| StoreError::Corrupt("session lifetime".into()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?").bind(millis(now)).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO sessions (key, expires_at) VALUES (?, ?)")
            .bind(key)
            .bind(millis(now + ttl))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_active(&self, key: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE key = ? AND expires_at > ?")
            .bind(key)
            .bind(millis(self.clock.now()))
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn end_session(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE key = ?").bind(key).execute(&self.pool).await?;
        Ok(())
    }
}

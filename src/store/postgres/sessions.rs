//! The PostgreSQL side of [`Sessions`]: the server secret in a one-row table, so the first
//! instance to start picks it for all, and session keys whose expiry the database's clock
//! judges, so instances whose clocks disagree still end a session at the same moment.

use std::time::Duration;

use async_trait::async_trait;

use super::PgStore;
use crate::store::{Sessions, StoreError};

#[async_trait]
impl Sessions for PgStore {
    async fn server_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT secret FROM server_secret WHERE id = 1").fetch_one(&self.pool).await?)
    }

    #[tracing::instrument(skip_all)]
    async fn start_session(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let secs = i64::try_from(ttl.as_secs()).map_err(|_| StoreError::Corrupt("session lifetime".into()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= clock_timestamp()").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sessions (key, expires_at) VALUES ($1, clock_timestamp() + make_interval(secs => $2))",
        )
        .bind(key)
        .bind(secs as f64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_active(&self, key: &str) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM sessions WHERE key = $1 AND expires_at > clock_timestamp()")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn end_session(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(())
    }
}

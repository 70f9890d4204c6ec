//! Claims, leases, takeovers and dial pacing on SQLite. Each step that counts dials first writes
//! (clearing the log's old entries), which takes SQLite's single writer lock: nothing can claim or
//! log a dial between the count and the claim.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use super::{CALL_COLUMNS, SqliteStore, calls_from_rows, from_millis, insert_history, millis};
use crate::domain::{CallId, HistoryEntry};
use crate::store::dialing::{Usage, in_progress_sql};
use crate::store::{Claimed, DialLimits, LeaseTerms, StoreError, TakenOver, Takeover};

fn later(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(span).unwrap_or(chrono::Duration::MAX)
}

fn earlier(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    at - chrono::Duration::from_std(span).unwrap_or(chrono::Duration::MAX)
}

/// Forgets dials older than the rate window and counts what the limits are using, taking the
/// writer lock as it does so. Without limits there is nothing to count, and the claim is one
/// statement that needs no lock held before it.
async fn usage(tx: &mut Transaction<'_, Sqlite>, limits: &DialLimits, now: DateTime<Utc>) -> Result<Usage, StoreError> {
    if *limits == DialLimits::unlimited() {
        return Ok(Usage { now, dials_in_window: 0, oldest_dial: None, active: 0 });
    }
    let window = limits.rate.map_or(Duration::ZERO, |(_, window)| window);
    let since = millis(earlier(now, window));
    sqlx::query("DELETE FROM dial_log WHERE at <= ?").bind(since).execute(&mut **tx).await?;
    let (dials, oldest): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MIN(at) FROM dial_log").fetch_one(&mut **tx).await?;
    let active: i64 = match limits.max_active {
        Some(_) => {
            let sql = format!("SELECT COUNT(*) FROM calls WHERE status IN ({})", in_progress_sql());
            sqlx::query_scalar(&sql).fetch_one(&mut **tx).await?
        }
        None => 0,
    };
    Ok(Usage {
        now,
        dials_in_window: u32::try_from(dials).unwrap_or(u32::MAX),
        oldest_dial: oldest.map(from_millis).transpose()?,
        active: u32::try_from(active).unwrap_or(u32::MAX),
    })
}

/// Logs `count` dials at `now`, when a dial rate is kept at all.
async fn log_dials(
    tx: &mut Transaction<'_, Sqlite>,
    limits: &DialLimits,
    count: usize,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if limits.rate.is_none() {
        return Ok(());
    }
    for _ in 0..count {
        sqlx::query("INSERT INTO dial_log (at) VALUES (?)").bind(millis(now)).execute(&mut **tx).await?;
    }
    Ok(())
}

impl SqliteStore {
    /// Now, to the millisecond the file keeps, so instants computed from it match the ones read back.
    fn stored_now(&self) -> Result<DateTime<Utc>, StoreError> {
        from_millis(millis(self.clock.now()))
    }

    pub(super) async fn claim(
        &self,
        terms: &LeaseTerms,
        limit: u32,
        limits: &DialLimits,
    ) -> Result<Claimed, StoreError> {
        let now = self.stored_now()?;
        let mut tx = self.pool.begin().await?;
        let (room, held_back) = limits.room(limit, &usage(&mut tx, limits, now).await?);
        if room == 0 {
            tx.commit().await?;
            return Ok(Claimed { calls: Vec::new(), held_back });
        }
        let sql = format!(
            "UPDATE calls SET status = 'dialing', attempt = attempt + 1, lease_owner = ?1, lease_until = ?2, \
             dial_started_at = ?3, updated_at = ?3 WHERE id IN (SELECT id FROM calls INDEXED BY calls_scheduled_due \
             WHERE status = 'scheduled' \
             AND due_at <= ?3 ORDER BY due_at LIMIT ?4) RETURNING {CALL_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&terms.owner)
            .bind(millis(later(now, terms.ttl)))
            .bind(millis(now))
            .bind(i64::from(room))
            .fetch_all(&mut *tx)
            .await?;
        let mut calls = calls_from_rows(&rows)?;
        calls.sort_by_key(|call| call.due_at);
        for call in &calls {
            let detail = format!("attempt {}, by {}", call.attempt, terms.owner);
            let entry = HistoryEntry { kind: "dialing".into(), time: now, detail: Some(detail) };
            insert_history(&mut *tx, call.id, &entry).await?;
        }
        log_dials(&mut tx, limits, calls.len(), now).await?;
        tx.commit().await?;
        calls.iter().for_each(|call| self.changes.publish(call.id));
        // The limits only held calls back if they were the reason fewer were claimed.
        let held_back = held_back.filter(|_| calls.len() as u64 == u64::from(room));
        Ok(Claimed { calls, held_back })
    }

    pub(super) async fn renew(&self, id: CallId, terms: &LeaseTerms, attempt: u32) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE calls SET lease_until = ? WHERE id = ? AND status = 'dialing' AND lease_owner = ? AND attempt = ?",
        )
        .bind(millis(later(self.clock.now(), terms.ttl)))
        .bind(id.to_string())
        .bind(&terms.owner)
        .bind(i64::from(attempt))
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    pub(super) async fn missed(&self, grace: Duration) -> Result<Vec<CallId>, StoreError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE calls INDEXED BY calls_scheduled_due SET status = 'missed', updated_at = ?, \
             last_error = 'fell due while the service was down' WHERE status = 'scheduled' AND due_at < ? RETURNING id",
        )
        .bind(millis(now))
        .bind(millis(earlier(now, grace)))
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = sqlx::Row::try_get(row, "id")?;
            let id: CallId = id.parse().map_err(|_| StoreError::Corrupt("call id".into()))?;
            let entry = HistoryEntry {
                kind: "missed".into(),
                time: now,
                detail: Some("fell due while the service was down, beyond the grace period".into()),
            };
            insert_history(&mut *tx, id, &entry).await?;
            ids.push(id);
        }
        tx.commit().await?;
        ids.iter().for_each(|id| self.changes.publish(*id));
        Ok(ids)
    }

    pub(super) async fn orphans(&self, owner: Option<&str>) -> Result<Vec<crate::domain::Call>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE status = 'dialing' AND call_control_id IS NULL \
             AND (lease_until < ? OR lease_owner = ?)"
        );
        let rows = sqlx::query(&sql).bind(millis(self.clock.now())).bind(owner).fetch_all(&self.pool).await?;
        calls_from_rows(&rows)
    }

    pub(super) async fn take_over(
        &self,
        id: CallId,
        terms: &LeaseTerms,
        limits: &DialLimits,
        takeover: &Takeover,
    ) -> Result<Option<TakenOver>, StoreError> {
        let now = self.stored_now()?;
        let mut tx = self.pool.begin().await?;
        let (room, _) = limits.room(1, &usage(&mut tx, limits, now).await?);
        let own = takeover.own_previous_run.then_some(terms.owner.as_str());
        let resend_after = millis(earlier(now, takeover.resend_within));
        // One conditional step: still orphaned, and either resendable with room to dial or too old to resend.
        let sql = format!(
            "UPDATE calls SET attempt = attempt + 1, lease_owner = ?1, lease_until = ?2 WHERE id = ?3 \
             AND status = 'dialing' AND call_control_id IS NULL AND (lease_until < ?4 OR lease_owner = ?5) \
             AND (COALESCE(dial_started_at, 0) <= ?6 OR ?7) RETURNING {CALL_COLUMNS}, COALESCE(dial_started_at, 0) > ?6 AS resend"
        );
        let row = sqlx::query(&sql)
            .bind(&terms.owner)
            .bind(millis(later(now, terms.ttl)))
            .bind(id.to_string())
            .bind(millis(now))
            .bind(own)
            .bind(resend_after)
            .bind(room > 0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let call = super::call_from_row(&row)?;
        let resend: bool = sqlx::Row::try_get(&row, "resend")?;
        if resend {
            log_dials(&mut tx, limits, 1, now).await?;
        }
        tx.commit().await?;
        Ok(Some(if resend { TakenOver::Resend(call) } else { TakenOver::Abandon(call) }))
    }
}

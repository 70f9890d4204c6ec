//! Claims, leases, takeovers and cluster-wide dial pacing on PostgreSQL. A claim or a takeover
//! first takes one transaction-scoped advisory lock, so the count of recent dials it reads cannot
//! change before its own dials are logged; then it reads the database's clock once and decides
//! everything by it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::broadcast;

use super::notices::{CHANNEL, Note};
use super::{CALL_COLUMNS, PgStore, attempt_value, call_from_row, calls_from_rows, limits, secs};
use crate::domain::{Call, CallId, DueAt, HistoryEntry, PhoneNumber};
use crate::store::dial_queue::{Usage, in_progress_sql};
use crate::store::{Claimed, DialLimits, DialQueue, LeaseTerms, QueueNotice, StoreError, TakenOver, Takeover};

/// The advisory lock every claim and takeover holds while it counts and logs dials (an arbitrary
/// constant of our own; the events locks hash call keys into the same space, 2⁶⁴ values wide).
const PACING_LOCK: i64 = 0x4441_4a4b_5041_4345;

/// Takes the pacing lock, then reads the clock (after any wait for the lock) and what the
/// limits are using, clearing dials older than the window on the way. Without limits there is
/// nothing to count and no lock to take: the claim is one statement.
async fn pace(tx: &mut Transaction<'_, Postgres>, limits: &DialLimits) -> Result<Usage, StoreError> {
    if *limits == DialLimits::unlimited() {
        let now = sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut **tx).await?;
        return Ok(Usage { now, dials_in_window: 0, oldest_dial: None, active: 0 });
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PACING_LOCK).execute(&mut **tx).await?;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut **tx).await?;
    let window = limits.rate.map_or(Duration::ZERO, |(_, window)| window);
    sqlx::query("DELETE FROM dial_log WHERE at <= $1 - make_interval(secs => $2)")
        .bind(now)
        .bind(secs(window))
        .execute(&mut **tx)
        .await?;
    let active_sql = match limits.max_active {
        Some(_) => format!("(SELECT COUNT(*) FROM calls WHERE status IN ({}))", in_progress_sql()),
        None => "0::bigint".to_owned(),
    };
    let sql = format!("SELECT COUNT(*), MIN(at), {active_sql} FROM dial_log");
    let (dials, oldest, active): (i64, Option<DateTime<Utc>>, i64) = sqlx::query_as(&sql).fetch_one(&mut **tx).await?;
    Ok(Usage {
        now,
        dials_in_window: u32::try_from(dials).unwrap_or(u32::MAX),
        oldest_dial: oldest,
        active: u32::try_from(active).unwrap_or(u32::MAX),
    })
}

/// Logs `count` dials at `now`, when a dial rate is kept at all.
async fn log_dials(
    tx: &mut Transaction<'_, Postgres>,
    limits: &DialLimits,
    count: usize,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if limits.rate.is_none() {
        return Ok(());
    }
    sqlx::query("INSERT INTO dial_log (at) SELECT $1 FROM generate_series(1, $2)")
        .bind(now)
        .bind(i64::try_from(count).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl DialQueue for PgStore {
    fn queue_notices(&self) -> broadcast::Receiver<QueueNotice> {
        self.notices.subscribe()
    }

    async fn next_due(&self, limit: u32) -> Result<Vec<(CallId, DueAt)>, StoreError> {
        let rows = sqlx::query("SELECT id, due_at FROM calls WHERE status = 'scheduled' ORDER BY due_at LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let id: uuid::Uuid = row.try_get("id")?;
                Ok((CallId::from(id), DueAt::from_stored(row.try_get("due_at")?)))
            })
            .collect()
    }

    #[tracing::instrument(skip(self, limits))]
    async fn claim_due(&self, terms: &LeaseTerms, limit: u32, limits: &DialLimits) -> Result<Claimed, StoreError> {
        let mut tx = self.pool.begin().await?;
        let usage = pace(&mut tx, limits).await?;
        let (room, held_back) = limits.room(limit, &usage);
        if room == 0 {
            tx.commit().await?;
            return Ok(Claimed { calls: Vec::new(), held_back });
        }
        let sql = format!(
            "WITH picked AS (SELECT id AS picked_id FROM calls WHERE status = 'scheduled' AND due_at <= $1 ORDER BY due_at \
             LIMIT $2 FOR UPDATE SKIP LOCKED), \
             claimed AS (UPDATE calls SET status = 'dialing', attempt = calls.attempt + 1, lease_owner = $3, \
             lease_until = $1 + make_interval(secs => $4), dial_started_at = $1, updated_at = $1 FROM picked \
             WHERE calls.id = picked.picked_id RETURNING {CALL_COLUMNS}), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) \
             SELECT id, $1, 'dialing', 'attempt ' || attempt || ', by ' || $3 FROM claimed) \
             SELECT {CALL_COLUMNS} FROM claimed ORDER BY due_at"
        );
        let rows = sqlx::query(&sql)
            .bind(usage.now)
            .bind(i64::from(room))
            .bind(&terms.owner)
            .bind(secs(terms.ttl))
            .fetch_all(&mut *tx)
            .await?;
        let calls = calls_from_rows(&rows)?;
        log_dials(&mut tx, limits, calls.len(), usage.now).await?;
        let notes: Vec<String> = calls.iter().map(|call| self.note(Note::Changed(call.id))).collect();
        sqlx::query(&format!("SELECT pg_notify('{CHANNEL}', note) FROM unnest($1::text[]) AS note"))
            .bind(&notes)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        calls.iter().for_each(|call| self.changes.publish(call.id));
        // The limits only held calls back if they were the reason fewer were claimed.
        let held_back = held_back.filter(|_| calls.len() as u64 == u64::from(room));
        Ok(Claimed { calls, held_back })
    }
    #[tracing::instrument(skip(self, terms), fields(call_id = %id))]
    async fn renew_lease(&self, id: CallId, terms: &LeaseTerms, attempt: u32) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE calls SET lease_until = clock_timestamp() + make_interval(secs => $1) WHERE id = $2 \
             AND status = 'dialing' AND lease_owner = $3 AND attempt = $4",
        )
        .bind(secs(terms.ttl))
        .bind(id.as_uuid())
        .bind(&terms.owner)
        .bind(attempt_value(attempt))
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }
    #[tracing::instrument(skip(self))]
    async fn mark_missed(&self, grace: Duration) -> Result<Vec<CallId>, StoreError> {
        let rows = sqlx::query(
            "WITH missed AS (UPDATE calls SET status = 'missed', updated_at = now(), \
             last_error = 'fell due while the service was down' WHERE status = 'scheduled' \
             AND due_at < now() - make_interval(secs => $1) RETURNING id), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) SELECT id, now(), 'missed', \
             'fell due while the service was down, beyond the grace period' FROM missed) \
             SELECT id FROM missed",
        )
        .bind(secs(grace))
        .fetch_all(&self.pool)
        .await?;
        let ids = rows
            .iter()
            .map(|row| Ok(CallId::from(row.try_get::<uuid::Uuid, _>("id")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let notes: Vec<String> = ids.iter().map(|id| self.note(Note::Changed(*id))).collect();
        sqlx::query(&format!("SELECT pg_notify('{CHANNEL}', note) FROM unnest($1::text[]) AS note"))
            .bind(&notes)
            .execute(&self.pool)
            .await?;
        ids.iter().for_each(|id| self.changes.publish(*id));
        Ok(ids)
    }
    async fn orphaned_dials(&self, owner: Option<&str>) -> Result<Vec<Call>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE status = 'dialing' AND call_control_id IS NULL \
             AND (lease_until < clock_timestamp() OR lease_owner = $1)"
        );
        let rows = sqlx::query(&sql).bind(owner).fetch_all(&self.pool).await?;
        calls_from_rows(&rows)
    }
    #[tracing::instrument(skip(self, terms, limits), fields(call_id = %id))]
    async fn take_over_dial(
        &self,
        id: CallId,
        terms: &LeaseTerms,
        limits: &DialLimits,
        takeover: &Takeover,
    ) -> Result<Option<TakenOver>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let usage = pace(&mut tx, limits).await?;
        let (room, _) = limits.room(1, &usage);
        let own = takeover.own_previous_run.then_some(terms.owner.as_str());
        // One conditional step: still orphaned by the database's clock, and either young enough
        // to resend (with room to dial) or too old to resend at all.
        let sql = format!(
            "UPDATE calls SET attempt = attempt + 1, lease_owner = $1, lease_until = $2 + make_interval(secs => $3) \
             WHERE id = $4 AND status = 'dialing' AND call_control_id IS NULL AND (lease_until < $2 OR lease_owner = $5) \
             AND (COALESCE(dial_started_at, '-infinity') <= $2 - make_interval(secs => $6) OR $7) \
             RETURNING {CALL_COLUMNS}, COALESCE(dial_started_at, '-infinity') > $2 - make_interval(secs => $6) AS resend"
        );
        let row = sqlx::query(&sql)
            .bind(&terms.owner)
            .bind(usage.now)
            .bind(secs(terms.ttl))
            .bind(id.as_uuid())
            .bind(own)
            .bind(secs(takeover.resend_within))
            .bind(room > 0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let call = call_from_row(&row)?;
        let resend: bool = row.try_get("resend")?;
        if resend {
            log_dials(&mut tx, limits, 1, usage.now).await?;
        }
        tx.commit().await?;
        Ok(Some(if resend { TakenOver::Resend(call) } else { TakenOver::Abandon(call) }))
    }
    async fn due_calls(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Call>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE status = 'scheduled' AND due_at <= $1 ORDER BY due_at LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(now).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        calls_from_rows(&rows)
    }

    #[tracing::instrument(skip(self, entry), fields(call_id = %id))]
    async fn reschedule(&self, id: CallId, from: DueAt, to: DueAt, entry: &HistoryEntry) -> Result<bool, StoreError> {
        // The number is only needed to lock and count for the limits; without limits the move is
        // the one statement it always was.
        let number = if self.limits.any() {
            let stored: Option<String> = sqlx::query_scalar("SELECT to_number FROM calls WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            let Some(stored) = stored else { return Ok(false) };
            Some(PhoneNumber::from_stored(stored).ok_or_else(|| StoreError::Corrupt("phone number".into()))?)
        } else {
            None
        };
        let sql = format!(
            "WITH moved AS (UPDATE calls SET due_at = $1, updated_at = now() \
             WHERE id = $2 AND status = 'scheduled' AND due_at = $3 RETURNING id), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) SELECT id, now(), $4, $5 FROM moved), \
             announced AS (SELECT pg_notify('{CHANNEL}', $6) FROM moved) \
             SELECT COUNT(*) FROM announced"
        );
        let mut tx = self.pool.begin().await?;
        if let Some(number) = &number {
            limits::lock(&mut tx, &self.limits, number).await?;
        }
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
        if let Some(number) = &number {
            limits::admit(&mut tx, &self.limits, id, number, to.instant()).await?;
        }
        tx.commit().await?;
        self.changes.publish(id);
        Ok(true)
    }
}

//! The ring-time limits on PostgreSQL, for every instance sharing the database. A guarded write
//! first takes a transaction-scoped advisory lock: one for the whole database when a global limit
//! is on, else one per number, so two instances' writes near the same moment are counted one
//! after the other (each count runs after the lock is granted, in a fresh snapshot under READ
//! COMMITTED, and so sees what the previous holder committed).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::domain::limits::{Limits, Window};
use crate::domain::{CallId, PhoneNumber};
use crate::store::StoreError;
use crate::store::limits::{NOT_RINGING, Near, near_columns};

/// The advisory lock every guarded write takes while a global limit is on.
const ALL_CALLS_LOCK: i64 = 0x4441_4a4b_4c49_4d54;
/// The first key of the per-number advisory locks (the second is the number's hash); the
/// two-key form never collides with the one-key locks such as [`ALL_CALLS_LOCK`].
const NUMBER_LOCKS: i32 = 0x4441_4a4b;

/// Takes the lock a write of a call to `to` needs before it counts the calls near it.
pub(super) async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    limits: &Limits,
    to: &PhoneNumber,
) -> Result<(), StoreError> {
    if !limits.any() {
        return Ok(());
    }
    if limits.any_global() {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ALL_CALLS_LOCK).execute(&mut **tx).await?;
    } else {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(NUMBER_LOCKS)
            .bind(to.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Refuses (with [`StoreError::LimitReached`]) a call `id` to `to` that was just written to ring
/// at `at`, when the other calls near it already fill a limit. Runs inside the write's
/// transaction, after [`lock`] and the write, so a refusal rolls the write back.
pub(super) async fn admit(
    tx: &mut Transaction<'_, Postgres>,
    limits: &Limits,
    id: CallId,
    to: &PhoneNumber,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !limits.any() {
        return Ok(());
    }
    let (hour, day) = (Window::Hour.length(), Window::Day.length());
    let only_number = if limits.any_global() { "" } else { "AND to_number = $1" };
    let sql = format!(
        "SELECT {} FROM calls WHERE due_at > $4 AND due_at < $5 AND status NOT IN {NOT_RINGING} AND id <> $6 {only_number}",
        near_columns("due_at > $2 AND due_at < $3", "to_number = $1"),
    );
    let (number_hour, number_day, all_hour, all_day) = sqlx::query_as(&sql)
        .bind(to.as_str())
        .bind(at - hour)
        .bind(at + hour)
        .bind(at - day)
        .bind(at + day)
        .bind(id.as_uuid())
        .fetch_one(&mut **tx)
        .await?;
    Near { number_hour, number_day, all_hour, all_day }.admit(limits)
}

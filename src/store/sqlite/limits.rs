//! The ring-time limits on SQLite. Every write they guard runs in a `BEGIN IMMEDIATE`
//! transaction, which takes the file's single writer lock at its first statement: no other write
//! can land between a count and the write it guards, on any connection of the pool.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::millis;
use crate::domain::limits::{Limits, Window};
use crate::domain::{CallId, PhoneNumber};
use crate::store::StoreError;
use crate::store::limits::{NOT_RINGING, Near, near_columns};

/// How a guarded write's transaction begins.
pub(super) const IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// Refuses (with [`StoreError::LimitReached`]) a call `id` to `to` that was just written to ring
/// at `at`, when the other calls near it already fill a limit. Runs inside the write's
/// transaction, after the write, so a refusal rolls it back.
pub(super) async fn admit(
    conn: &mut SqliteConnection,
    limits: &Limits,
    id: CallId,
    to: &PhoneNumber,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !limits.any() {
        return Ok(());
    }
    let (hour, day) = (Window::Hour.length(), Window::Day.length());
    // Without a global limit only the number's calls are read. The index is named, as the
    // queue's are, so that SQLite never falls back to reading every call.
    let (index, only_number) =
        if limits.any_global() { ("calls_due", "") } else { ("calls_to_due", "AND to_number = ?1") };
    let sql = format!(
        "SELECT {} FROM calls INDEXED BY {index} WHERE due_at > ?4 AND due_at < ?5 \
         AND status NOT IN {NOT_RINGING} AND id <> ?6 {only_number}",
        near_columns("due_at > ?2 AND due_at < ?3", "to_number = ?1"),
    );
    let (number_hour, number_day, all_hour, all_day) = sqlx::query_as(&sql)
        .bind(to.as_str())
        .bind(millis(at - hour))
        .bind(millis(at + hour))
        .bind(millis(at - day))
        .bind(millis(at + day))
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    Near { number_hour, number_day, all_hour, all_day }.admit(limits)
}

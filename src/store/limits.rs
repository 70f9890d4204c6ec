//! What both backends share in enforcing the ring-time limits ([`crate::domain::limits`]): the
//! counts of calls near a moment, and the rule that a write which sets when a call rings counts
//! the others near it after writing, in the same transaction, and rolls back if one more call
//! there breaks a limit. Each backend makes that count see every write before it (SQLite's single
//! writer lock, PostgreSQL's advisory locks).

use crate::domain::limits::{Limits, Scope, Window};
use crate::store::StoreError;

/// The statuses of calls that never ring, and so never count: cancelled and missed ones.
pub(super) const NOT_RINGING: &str = "('cancelled', 'missed')";

/// How many other calls ring near a moment: within an hour and within a day of it, to the same
/// number and in all.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Near {
    /// To the number, within an hour.
    pub number_hour: i64,
    /// To the number, within a day.
    pub number_day: i64,
    /// In all, within an hour (0 when only the number's were counted).
    pub all_hour: i64,
    /// In all, within a day (0 when only the number's were counted).
    pub all_day: i64,
}

impl Near {
    fn get(&self, scope: Scope, window: Window) -> u64 {
        let count = match (scope, window) {
            (Scope::Number, Window::Hour) => self.number_hour,
            (Scope::Number, Window::Day) => self.number_day,
            (Scope::All, Window::Hour) => self.all_hour,
            (Scope::All, Window::Day) => self.all_day,
        };
        u64::try_from(count).unwrap_or_default()
    }

    /// Refuses the write these counts were taken for when one more call breaks a limit.
    pub fn admit(&self, limits: &Limits) -> Result<(), StoreError> {
        match limits.first_broken(|scope, window| self.get(scope, window)) {
            Some(hit) => Err(StoreError::LimitReached(hit)),
            None => Ok(()),
        }
    }
}

/// The SELECT list that counts [`Near`]'s four figures, given how each backend writes "the call
/// rings within an hour of the moment" (`within_hour`) and "the call is to the number" (`to_number`);
/// the query's WHERE clause bounds it to the day either side.
pub(super) fn near_columns(within_hour: &str, to_number: &str) -> String {
    format!(
        "COALESCE(SUM(CASE WHEN {to_number} AND {within_hour} THEN 1 ELSE 0 END), 0) AS number_hour, \
         COALESCE(SUM(CASE WHEN {to_number} THEN 1 ELSE 0 END), 0) AS number_day, \
         COALESCE(SUM(CASE WHEN {within_hour} THEN 1 ELSE 0 END), 0) AS all_hour, \
         COUNT(*) AS all_day"
    )
}

//! The SQLite side of recurring rules: the `schedules` table, and the calls they make. A rule's
//! step (cursor moved, occurrence's call stored) is one transaction; the cursor's
//! compare-and-set and the unique (rule, occurrence) key on calls are what keep every occurrence
//! to a single call.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Link, SqliteStore, from_millis, insert_call_row, insert_history, limits, millis};
use crate::domain::{CallId, DueAt, HistoryEntry, PhoneNumber, Timezone};
use crate::domain::{CatchUp, NewRule, Recurrence, Rule, RuleId, RuleStatus};
use crate::store::{RuleStep, Stepped, StoreError};

/// A rule's columns and its waiting call (the earliest scheduled call made for an occurrence).
const RULE_SELECT: &str = "SELECT s.id, s.to_number, s.timezone, s.recurrence, s.catch_up, s.status, s.cursor_at, \
     s.note, s.created_at, s.updated_at, \
     (SELECT c.id FROM calls c WHERE c.rule_id = s.id AND c.status = 'scheduled' AND c.occurrence_at IS NOT NULL \
      ORDER BY c.due_at LIMIT 1) AS waiting_id, \
     (SELECT c.due_at FROM calls c WHERE c.rule_id = s.id AND c.status = 'scheduled' AND c.occurrence_at IS NOT NULL \
      ORDER BY c.due_at LIMIT 1) AS waiting_due \
     FROM schedules s";

fn rule_from_row(row: &SqliteRow) -> Result<Rule, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("rule {what}"));
    let text = |column: &str| row.try_get::<String, _>(column);
    let waiting_id: Option<String> = row.try_get("waiting_id")?;
    let waiting_due: Option<i64> = row.try_get("waiting_due")?;
    let next_call = match (waiting_id, waiting_due) {
        (Some(id), Some(due)) => {
            Some((id.parse::<CallId>().map_err(|_| corrupt("call id"))?, DueAt::from_stored(from_millis(due)?)))
        }
        _ => None,
    };
    Ok(Rule {
        id: text("id")?.parse().map_err(|_| corrupt("id"))?,
        to: PhoneNumber::parse(&text("to_number")?).map_err(|_| corrupt("number"))?,
        timezone: Timezone::parse(&text("timezone")?).ok_or_else(|| corrupt("time zone"))?,
        recurrence: Recurrence::from_stored(&text("recurrence")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        catch_up: CatchUp::from_stored(&text("catch_up")?).ok_or_else(|| corrupt("catch-up"))?,
        status: text("status")?.parse().map_err(|_: String| corrupt("status"))?,
        cursor: from_millis(row.try_get("cursor_at")?)?,
        note: row.try_get("note")?,
        next_call,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

fn rules_from_rows(rows: &[SqliteRow]) -> Result<Vec<Rule>, StoreError> {
    rows.iter().map(rule_from_row).collect()
}

impl SqliteStore {
    #[tracing::instrument(skip(self, rule), fields(rule_id = %rule.id))]
    pub(super) async fn insert_rule_row(&self, rule: &NewRule, now: DateTime<Utc>) -> Result<Rule, StoreError> {
        sqlx::query(
            "INSERT INTO schedules (id, to_number, timezone, recurrence, catch_up, status, cursor_at, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
        )
        .bind(rule.id.to_string())
        .bind(rule.to.as_str())
        .bind(rule.timezone.name())
        .bind(rule.recurrence.to_stored())
        .bind(rule.catch_up.to_stored())
        .bind(millis(now))
        .bind(millis(now))
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        self.rule_by_id(rule.id).await?.ok_or_else(|| StoreError::Corrupt("lost rule insert".into()))
    }

    pub(super) async fn rule_by_id(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let sql = format!("{RULE_SELECT} WHERE s.id = ?");
        let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(&self.pool).await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    pub(super) async fn all_rules(&self) -> Result<Vec<Rule>, StoreError> {
        let sql = format!("{RULE_SELECT} ORDER BY s.created_at, s.id");
        rules_from_rows(&sqlx::query(&sql).fetch_all(&self.pool).await?)
    }

    pub(super) async fn rules_needing_calls(&self, late_before: DateTime<Utc>) -> Result<Vec<Rule>, StoreError> {
        let sql = format!(
            "SELECT * FROM ({RULE_SELECT}) r WHERE r.status = 'active' AND (r.waiting_id IS NULL OR r.waiting_due < ?)"
        );
        rules_from_rows(&sqlx::query(&sql).bind(millis(late_before)).fetch_all(&self.pool).await?)
    }

    #[tracing::instrument(skip(self), fields(rule_id = %id, status = status.as_str()))]
    pub(super) async fn change_rule_status(
        &self,
        id: RuleId,
        status: RuleStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Rule>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Resuming starts the cursor afresh, so nothing that fell due while paused is made up.
        let changed = sqlx::query(
            "UPDATE schedules SET status = ?1, updated_at = ?2, cursor_at = CASE WHEN ?1 = 'active' THEN ?2 \
             ELSE cursor_at END WHERE id = ?3 AND status <> ?1",
        )
        .bind(status.as_str())
        .bind(millis(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let cancelled = if changed.rows_affected() == 1 && status == RuleStatus::Paused {
            cancel_waiting(&mut tx, id, now, "the rule was paused").await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        cancelled.iter().for_each(|call| self.changes.publish(*call));
        self.rule_by_id(id).await
    }

    #[tracing::instrument(skip(self), fields(rule_id = %id))]
    pub(super) async fn remove_rule(&self, id: RuleId) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM schedules WHERE id = ?").bind(id.to_string()).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let cancelled = cancel_waiting(&mut tx, id, now, "the rule was deleted").await?;
        tx.commit().await?;
        cancelled.iter().for_each(|call| self.changes.publish(*call));
        Ok(true)
    }

    #[tracing::instrument(skip(self, step), fields(rule_id = %step.rule))]
    pub(super) async fn apply_rule_step(&self, step: &RuleStep) -> Result<Stepped, StoreError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin_with(limits::IMMEDIATE).await?;
        let moved = sqlx::query(
            "UPDATE schedules SET cursor_at = ?, note = COALESCE(?, note), updated_at = ? \
             WHERE id = ? AND cursor_at = ? AND status = 'active'",
        )
        .bind(millis(step.cursor_to))
        .bind(&step.note)
        .bind(millis(now))
        .bind(step.rule.to_string())
        .bind(millis(step.cursor_from))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(Stepped::Stale);
        }
        let created = match &step.occurrence {
            Some((call, at)) => {
                let link = Link { rule: Some(step.rule), occurrence_at: Some(at.instant()), retry: None };
                insert_call_row(&mut tx, call, &link, "rule_id, occurrence_at", now, &self.limits).await?
            }
            None => false,
        };
        tx.commit().await?;
        if let (true, Some((call, _))) = (created, &step.occurrence) {
            self.changes.publish(call.id);
        }
        Ok(Stepped::Moved { created })
    }
}

/// Cancels every scheduled call of a rule (its waiting occurrence and any retry), with the reason
/// in each one's history; returns their ids. A cancelled call gives its occurrence back (it never
/// rang), so resuming the rule before that moment makes the call again.
async fn cancel_waiting(
    conn: &mut sqlx::SqliteConnection,
    rule: RuleId,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<CallId>, StoreError> {
    let rows = sqlx::query(
        "UPDATE calls SET status = 'cancelled', occurrence_at = NULL, updated_at = ? \
         WHERE rule_id = ? AND status = 'scheduled' RETURNING id",
    )
    .bind(millis(now))
    .bind(rule.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: CallId = row.try_get::<String, _>("id")?.parse().map_err(|_| StoreError::Corrupt("call id".into()))?;
        let entry = HistoryEntry { kind: "cancelled".into(), time: now, detail: Some(reason.into()) };
        insert_history(&mut *conn, id, &entry).await?;
        ids.push(id);
    }
    Ok(ids)
}

//! Recurring rules on PostgreSQL: the `schedules` table, and the calls they make. A rule's step
//! (cursor moved, occurrence's call stored) is one transaction; the cursor's compare-and-set and
//! the unique (rule, occurrence) key on calls are what keep every occurrence to a single call,
//! whichever instances materialise it at the same moment.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PgStore;
use super::calls::{Link, insert_call_row};
use super::notices::{CHANNEL, Note};
use crate::calls::{CallId, DueAt, PhoneNumber, Timezone};
use crate::rules::{CatchUp, NewRule, Recurrence, Rule, RuleId, RuleStatus};
use crate::store::{RuleStep, Stepped, StoreError};

/// A rule's columns and its waiting call (the earliest scheduled call made for an occurrence).
const RULE_SELECT: &str = "SELECT s.id, s.to_number, s.timezone, s.recurrence, s.catch_up, s.status, s.cursor_at, \
     s.note, s.created_at, s.updated_at, \
     (SELECT c.id FROM calls c WHERE c.rule_id = s.id AND c.status = 'scheduled' AND c.occurrence_at IS NOT NULL \
      ORDER BY c.due_at LIMIT 1) AS waiting_id, \
     (SELECT c.due_at FROM calls c WHERE c.rule_id = s.id AND c.status = 'scheduled' AND c.occurrence_at IS NOT NULL \
      ORDER BY c.due_at LIMIT 1) AS waiting_due \
     FROM schedules s";

fn rule_from_row(row: &PgRow) -> Result<Rule, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("rule {what}"));
    let text = |column: &str| row.try_get::<String, _>(column);
    let waiting_id: Option<uuid::Uuid> = row.try_get("waiting_id")?;
    let waiting_due: Option<DateTime<Utc>> = row.try_get("waiting_due")?;
    let next_call = waiting_id.zip(waiting_due).map(|(id, due)| (CallId::from(id), DueAt::from_stored(due)));
    Ok(Rule {
        id: RuleId::from(row.try_get::<uuid::Uuid, _>("id")?),
        to: PhoneNumber::from_stored(text("to_number")?).ok_or_else(|| corrupt("number"))?,
        timezone: Timezone::parse(&text("timezone")?).ok_or_else(|| corrupt("time zone"))?,
        recurrence: Recurrence::from_stored(&text("recurrence")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        catch_up: CatchUp::from_stored(&text("catch_up")?).ok_or_else(|| corrupt("catch-up"))?,
        status: text("status")?.parse().map_err(|_: String| corrupt("status"))?,
        cursor: row.try_get("cursor_at")?,
        note: row.try_get("note")?,
        next_call,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn rules_from_rows(rows: &[PgRow]) -> Result<Vec<Rule>, StoreError> {
    rows.iter().map(rule_from_row).collect()
}

impl PgStore {
    pub(super) async fn insert_rule_row(&self, rule: &NewRule, now: DateTime<Utc>) -> Result<Rule, StoreError> {
        sqlx::query(
            "INSERT INTO schedules (id, to_number, timezone, recurrence, catch_up, status, cursor_at, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $6, $6)",
        )
        .bind(rule.id.as_uuid())
        .bind(rule.to.as_str())
        .bind(rule.timezone.name())
        .bind(rule.recurrence.to_stored())
        .bind(rule.catch_up.to_stored())
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.rule_by_id(rule.id).await?.ok_or_else(|| StoreError::Corrupt("lost rule insert".into()))
    }

    pub(super) async fn rule_by_id(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        let sql = format!("{RULE_SELECT} WHERE s.id = $1");
        let row = sqlx::query(&sql).bind(id.as_uuid()).fetch_optional(&self.pool).await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    pub(super) async fn all_rules(&self) -> Result<Vec<Rule>, StoreError> {
        let sql = format!("{RULE_SELECT} ORDER BY s.created_at, s.id");
        rules_from_rows(&sqlx::query(&sql).fetch_all(&self.pool).await?)
    }

    pub(super) async fn rules_needing_calls(&self, late_before: DateTime<Utc>) -> Result<Vec<Rule>, StoreError> {
        let sql = format!(
            "SELECT * FROM ({RULE_SELECT}) r WHERE r.status = 'active' AND (r.waiting_id IS NULL OR r.waiting_due < $1)"
        );
        rules_from_rows(&sqlx::query(&sql).bind(late_before).fetch_all(&self.pool).await?)
    }

    pub(super) async fn change_rule_status(
        &self,
        id: RuleId,
        status: RuleStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Rule>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Resuming starts the cursor afresh, so nothing that fell due while paused is made up.
        let changed = sqlx::query(
            "UPDATE schedules SET status = $1, updated_at = $2, cursor_at = CASE WHEN $1 = 'active' THEN $2 \
             ELSE cursor_at END WHERE id = $3 AND status <> $1",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        let cancelled = if changed.rows_affected() == 1 && status == RuleStatus::Paused {
            self.cancel_waiting(&mut tx, id, "the rule was paused").await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        cancelled.iter().for_each(|call| self.changes.publish(*call));
        self.rule_by_id(id).await
    }

    pub(super) async fn remove_rule(&self, id: RuleId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM schedules WHERE id = $1").bind(id.as_uuid()).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let cancelled = self.cancel_waiting(&mut tx, id, "the rule was deleted").await?;
        tx.commit().await?;
        cancelled.iter().for_each(|call| self.changes.publish(*call));
        Ok(true)
    }

    pub(super) async fn apply_rule_step(&self, step: &RuleStep) -> Result<Stepped, StoreError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE schedules SET cursor_at = $1, note = COALESCE($2, note), updated_at = now() \
             WHERE id = $3 AND cursor_at = $4 AND status = 'active'",
        )
        .bind(step.cursor_to)
        .bind(&step.note)
        .bind(step.rule.as_uuid())
        .bind(step.cursor_from)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(Stepped::Stale);
        }
        let created = match &step.occurrence {
            Some((call, at)) => {
                let link = Link { rule: Some(step.rule), occurrence_at: Some(*at), retry: None };
                let announcement = self.note(Note::Scheduled(call.id, call.schedule.due_at));
                let conflict = "rule_id, occurrence_at";
                insert_call_row(&mut *tx, call, &link, conflict, announcement).await?.is_some()
            }
            None => false,
        };
        tx.commit().await?;
        if let (true, Some((call, _))) = (created, &step.occurrence) {
            self.changes.publish(call.id);
        }
        Ok(Stepped::Moved { created })
    }

    /// Cancels every scheduled call of a rule (its waiting occurrence and any retry), with the
    /// reason in each one's history, and tells the other instances; returns their ids. A cancelled
    /// call gives its occurrence back (it never rang), so resuming the rule before that moment
    /// makes the call again.
    async fn cancel_waiting(
        &self,
        conn: &mut PgConnection,
        rule: RuleId,
        reason: &str,
    ) -> Result<Vec<CallId>, StoreError> {
        let rows = sqlx::query(
            "WITH cancelled AS (UPDATE calls SET status = 'cancelled', occurrence_at = NULL, updated_at = now() \
             WHERE rule_id = $1 AND status = 'scheduled' RETURNING id), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) \
             SELECT id, now(), 'cancelled', $2 FROM cancelled) \
             SELECT id FROM cancelled",
        )
        .bind(rule.as_uuid())
        .bind(reason)
        .fetch_all(&mut *conn)
        .await?;
        let ids = rows
            .iter()
            .map(|row| Ok(CallId::from(row.try_get::<uuid::Uuid, _>("id")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let notes: Vec<String> = ids.iter().map(|id| self.note(Note::Cancelled(*id))).collect();
        sqlx::query(&format!("SELECT pg_notify('{CHANNEL}', note) FROM unnest($1::text[]) AS note"))
            .bind(&notes)
            .execute(&mut *conn)
            .await?;
        Ok(ids)
    }
}

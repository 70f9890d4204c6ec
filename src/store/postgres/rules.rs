//! Recurring rules on PostgreSQL: the `schedules` table, and the calls they make. A rule's step
//! (cursor moved, occurrence's call stored) is one transaction. Instances materialising the same
//! rule at once meet at its row: the cursor's compare-and-set lets one of them step, and the
//! unique (rule_id, occurrence_at) key on calls keeps every occurrence to a single call across
//! the cluster whatever else happens (a rule resumed before its occurrence, a replayed step).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::notices::{CHANNEL, Note};
use super::{Link, PgStore};
use crate::domain::{CallId, DueAt, PhoneNumber, Timezone};
use crate::domain::{CatchUp, NewRule, Recurrence, Rule, RuleId, RuleStatus};
use crate::store::{RuleStep, Stepped, StoreError};

/// A rule's columns and its waiting call (the earliest scheduled call made for an occurrence).
const RULE_SELECT: &str = "SELECT s.id, s.to_number, s.timezone, s.recurrence, s.catch_up, s.status, s.cursor_at, \
     s.note, s.created_at, s.updated_at, w.id AS waiting_id, w.due_at AS waiting_due \
     FROM schedules s LEFT JOIN LATERAL (SELECT c.id, c.due_at FROM calls c WHERE c.rule_id = s.id \
     AND c.status = 'scheduled' AND c.occurrence_at IS NOT NULL ORDER BY c.due_at LIMIT 1) w ON true";

fn rule_from_row(row: &PgRow) -> Result<Rule, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("rule {what}"));
    let text = |column: &str| row.try_get::<String, _>(column);
    let waiting_id: Option<uuid::Uuid> = row.try_get("waiting_id")?;
    let waiting_due: Option<DateTime<Utc>> = row.try_get("waiting_due")?;
    let next_call = waiting_id.zip(waiting_due).map(|(id, due)| (CallId::from(id), DueAt::from_stored(due)));
    Ok(Rule {
        id: RuleId::from(row.try_get::<uuid::Uuid, _>("id")?),
        to: PhoneNumber::parse(&text("to_number")?).map_err(|_| corrupt("number"))?,
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
    #[tracing::instrument(skip(self, rule), fields(rule_id = %rule.id))]
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

    #[tracing::instrument(skip(self), fields(rule_id = %id))]
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

    #[tracing::instrument(skip(self, step), fields(rule_id = %step.rule))]
    pub(super) async fn apply_rule_step(&self, step: &RuleStep) -> Result<Stepped, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A concurrent step of the same rule waits here for the row and then finds the cursor moved.
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
                let link = Link { rule: Some(step.rule), occurrence_at: Some(at.instant()), retry: None };
                self.insert_linked(&mut tx, call, &link).await?
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
    /// reason in each one's history, and tells the other instances' queues; returns their ids. A
    /// cancelled call gives its occurrence back (it never rang), so resuming the rule before that
    /// moment makes the call again.
    async fn cancel_waiting(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rule: RuleId,
        reason: &str,
    ) -> Result<Vec<CallId>, StoreError> {
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "WITH cancelled AS (UPDATE calls SET status = 'cancelled', occurrence_at = NULL, updated_at = now() \
             WHERE rule_id = $1 AND status = 'scheduled' RETURNING id), \
             history AS (INSERT INTO call_events (call_id, at, kind, detail) SELECT id, now(), 'cancelled', $2 \
             FROM cancelled) SELECT id FROM cancelled",
        )
        .bind(rule.as_uuid())
        .bind(reason)
        .fetch_all(&mut **tx)
        .await?;
        let ids: Vec<CallId> = ids.into_iter().map(CallId::from).collect();
        for id in &ids {
            // Delivered only if the transaction commits, like every other announcement.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(self.note(Note::Cancelled(*id)))
                .execute(&mut **tx)
                .await?;
        }
        Ok(ids)
    }
}

//! The shared store: one PostgreSQL database for several instances. Claims are single statements
//! that skip rows another transaction holds (`FOR UPDATE SKIP LOCKED`); dial pacing is counted
//! under one transaction-scoped advisory lock, so the limits hold for the whole cluster; every
//! time that matters comes from the database's clock; changes are announced to the other
//! instances with `NOTIFY`.

mod calls;
mod dialing;
mod inbox;
mod limits;
mod notices;
mod rules;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::feeds::queue_notice_channel;
use super::{
    CallPatch, ChangeFeed, Claimed, DialLimits, EventsLock, InboxEvent, Inserted, LeaseTerms, ListQuery, NewCall,
    PendingEvent, QueueNotice, RuleStep, Stepped, Store, StoreError, TakenOver, Takeover,
};
use crate::domain::limits::Limits;
use crate::domain::outcomes::OutcomeCount;
use crate::domain::{Call, CallId, CallStatus, DueAt, HistoryEntry, PhoneNumber, Timezone};
use crate::domain::{NewRule, Rule, RuleId, RuleStatus};
use notices::{Hearers, Note};

/// Connections one instance keeps at most. Several instances share the server's limit
/// (`max_connections`, 100 by default): three instances take 3 × 16.
const POOL_SIZE: u32 = 16;

/// How many calls' events one instance applies at once. Each holds a connection (its lock's
/// transaction) while it works and needs another for its own steps, so this stays well under
/// [`POOL_SIZE`] and the pool can never be drained by lock holders waiting on each other.
const EVENT_LOCK_SLOTS: usize = 6;

const CALL_COLUMNS: &str = "id, to_number, due_at, timezone, status, attempt, call_control_id, joke, \
                            last_error, note, created_at, updated_at, rule_id, occurrence_at, retry_of, retry";

/// The PostgreSQL implementation of [`Store`]; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    changes: ChangeFeed,
    notices: broadcast::Sender<QueueNotice>,
    /// This store's name on the notices it sends, so its own listener can skip them.
    sender: String,
    event_slots: Arc<Semaphore>,
    /// How many calls may ring near one another; every write that sets when a call rings keeps to them.
    limits: Limits,
    /// Stops the listener when the last clone of the store is dropped.
    _listening: Arc<DropGuard>,
}

impl PgStore {
    /// Connects to the database `url` names (creating it if missing), applies the migrations and
    /// starts listening to the other instances; its writes keep to `limits`.
    pub async fn open(url: &str, limits: Limits) -> Result<Self, StoreError> {
        create_if_missing(url).await?;
        let pool = PgPoolOptions::new().max_connections(POOL_SIZE).connect(url).await?;
        // The migrator holds an advisory lock while it works, so instances starting together
        // apply each migration once.
        sqlx::migrate!("src/store/migrations/postgres").run(&pool).await?;
        let (changes, notices, sender) = (ChangeFeed::new(), queue_notice_channel(), uuid::Uuid::new_v4().to_string());
        let stop = CancellationToken::new();
        let hearers = Hearers { own: sender.clone(), changes: changes.clone(), queue: notices.clone() };
        let listener = notices::start_listening(&pool).await?;
        tokio::spawn(notices::listen(pool.clone(), listener, hearers, stop.clone()));
        let event_slots = Arc::new(Semaphore::new(EVENT_LOCK_SLOTS));
        Ok(Self { pool, changes, notices, sender, event_slots, limits, _listening: Arc::new(stop.drop_guard()) })
    }

    fn note(&self, note: Note) -> String {
        notices::encode(&self.sender, note)
    }
}

async fn create_if_missing(url: &str) -> Result<(), StoreError> {
    if Postgres::database_exists(url).await? {
        return Ok(());
    }
    if let Err(error) = Postgres::create_database(url).await {
        // Another instance starting at the same moment may have created it first.
        if !Postgres::database_exists(url).await? {
            return Err(error.into());
        }
    }
    Ok(())
}

/// A length of time as the fractional seconds `make_interval(secs => …)` takes.
fn secs(span: Duration) -> f64 {
    span.as_secs_f64()
}

fn call_from_row(row: &PgRow) -> Result<Call, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let to: String = row.try_get("to_number")?;
    let zone: String = row.try_get("timezone")?;
    let status: String = row.try_get("status")?;
    Ok(Call {
        id: CallId::from(row.try_get::<uuid::Uuid, _>("id")?),
        to: PhoneNumber::parse(&to).map_err(|_| corrupt("phone number"))?,
        due_at: DueAt::from_stored(row.try_get("due_at")?),
        timezone: Timezone::parse(&zone).ok_or_else(|| corrupt("time zone"))?,
        status: status.parse().map_err(|_| corrupt("status"))?,
        attempt: row.try_get::<i32, _>("attempt")?.try_into().map_err(|_| corrupt("attempt"))?,
        call_control_id: row.try_get("call_control_id")?,
        joke: row.try_get("joke")?,
        last_error: row.try_get("last_error")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        rule: row.try_get::<Option<uuid::Uuid>, _>("rule_id")?.map(RuleId::from),
        occurrence_at: row.try_get("occurrence_at")?,
        retry: retry_from_row(row)?,
    })
}

fn retry_from_row(row: &PgRow) -> Result<Option<(CallId, u32)>, StoreError> {
    let Some(first) = row.try_get::<Option<uuid::Uuid>, _>("retry_of")? else { return Ok(None) };
    let number = row.try_get::<i32, _>("retry")?.try_into().map_err(|_| StoreError::Corrupt("retry".into()))?;
    Ok(Some((CallId::from(first), number)))
}

fn calls_from_rows(rows: &[PgRow]) -> Result<Vec<Call>, StoreError> {
    rows.iter().map(call_from_row).collect()
}

/// What ties a new call to a rule's occurrence or to the call it retries; which of the two it is
/// also names the unique key that keeps it to one call.
#[derive(Debug)]
struct Link {
    rule: Option<RuleId>,
    occurrence_at: Option<DateTime<Utc>>,
    retry: Option<(CallId, u32)>,
}

fn attempt_value(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}

#[async_trait]
impl Store for PgStore {
    #[tracing::instrument(skip(self))]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&self.pool).await?)
    }

    #[tracing::instrument(skip(self, call), fields(call_id = %call.id))]
    async fn insert_call(&self, call: &NewCall) -> Result<Inserted, StoreError> {
        self.insert(call).await
    }

    #[tracing::instrument(skip(self))]
    async fn find_idempotent(&self, key: &str) -> Result<Option<(Call, String)>, StoreError> {
        self.idempotent(key).await
    }

    #[tracing::instrument(skip(self), fields(call_id = %id))]
    async fn get_call(&self, id: CallId) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.as_uuid()).fetch_optional(&self.pool).await?;
        row.as_ref().map(call_from_row).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn find_by_call_control_id(&self, id: &str) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE call_control_id = $1 LIMIT 1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(call_from_row).transpose()
    }

    fn changes(&self) -> broadcast::Receiver<CallId> {
        self.changes.subscribe()
    }

    fn queue_notices(&self) -> broadcast::Receiver<QueueNotice> {
        self.notices.subscribe()
    }

    #[tracing::instrument(skip(self))]
    async fn outcome_counts(&self, since: DateTime<Utc>, bucket_secs: u32) -> Result<Vec<OutcomeCount>, StoreError> {
        self.outcomes(since, bucket_secs).await
    }

    #[tracing::instrument(skip(self))]
    async fn list_calls(&self, query: &ListQuery) -> Result<Vec<Call>, StoreError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE ($1::text IS NULL OR status = $1) \
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(query.status.map(CallStatus::as_str))
            .bind(i64::from(query.limit))
            .bind(i64::from(query.offset))
            .fetch_all(&self.pool)
            .await?;
        calls_from_rows(&rows)
    }

    #[tracing::instrument(skip(self), fields(call_id = %id))]
    async fn history(&self, id: CallId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY seq")
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    kind: row.try_get("kind")?,
                    time: row.try_get("at")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip(self, patch, entry), fields(call_id = %id, %from, %to))]
    async fn change_status(
        &self,
        id: CallId,
        from: CallStatus,
        to: CallStatus,
        patch: &CallPatch,
        entry: &HistoryEntry,
    ) -> Result<bool, StoreError> {
        self.change(id, from, to, patch, entry).await
    }

    #[tracing::instrument(skip(self, entry), fields(call_id = %id, kind = %entry.kind))]
    async fn append_history(&self, id: CallId, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.append(id, entry).await
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
        self.claim(terms, limit, limits).await
    }

    #[tracing::instrument(skip(self, terms), fields(call_id = %id))]
    async fn renew_lease(&self, id: CallId, terms: &LeaseTerms, attempt: u32) -> Result<bool, StoreError> {
        self.renew(id, terms, attempt).await
    }

    #[tracing::instrument(skip(self))]
    async fn mark_missed(&self, grace: Duration) -> Result<Vec<CallId>, StoreError> {
        self.missed(grace).await
    }

    async fn orphaned_dials(&self, owner: Option<&str>) -> Result<Vec<Call>, StoreError> {
        self.orphans(owner).await
    }

    #[tracing::instrument(skip(self, terms, limits), fields(call_id = %id))]
    async fn take_over_dial(
        &self,
        id: CallId,
        terms: &LeaseTerms,
        limits: &DialLimits,
        takeover: &Takeover,
    ) -> Result<Option<TakenOver>, StoreError> {
        self.take_over(id, terms, limits, takeover).await
    }

    async fn last_joke_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        let joke = sqlx::query_scalar(
            "SELECT joke FROM calls WHERE to_number = $1 AND joke IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(to.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(joke)
    }

    #[tracing::instrument(skip(self, event), fields(event_id = %event.event_id))]
    async fn inbox_insert(&self, event: &InboxEvent) -> Result<bool, StoreError> {
        self.record_event(event).await
    }

    async fn inbox_pending(&self, call_key: &str) -> Result<Vec<PendingEvent>, StoreError> {
        self.pending_events(call_key).await
    }

    async fn inbox_pending_keys(&self) -> Result<Vec<String>, StoreError> {
        let keys = sqlx::query_scalar("SELECT DISTINCT call_key FROM inbox WHERE processed_at IS NULL")
            .fetch_all(&self.pool)
            .await?;
        Ok(keys)
    }

    async fn inbox_finish(&self, seq: i64, error: Option<&str>, give_up: bool) -> Result<(), StoreError> {
        self.finish_event(seq, error, give_up).await
    }

    async fn lock_events(&self, call_key: &str) -> Result<Option<EventsLock>, StoreError> {
        self.try_lock_events(call_key).await
    }

    #[tracing::instrument(skip(self, events), fields(count = events.len()))]
    async fn inbox_insert_group(&self, events: &[InboxEvent]) -> Result<Vec<bool>, StoreError> {
        self.record_events(events).await
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
        self.move_due(id, from, to, entry).await
    }

    #[tracing::instrument(skip(self, call), fields(call_id = %call.id, %first, retry))]
    async fn insert_retry(
        &self,
        call: &NewCall,
        first: CallId,
        retry: u32,
        rule: Option<RuleId>,
    ) -> Result<bool, StoreError> {
        let link = Link { rule, occurrence_at: None, retry: Some((first, retry)) };
        let mut tx = self.pool.begin().await?;
        let created = self.insert_linked(&mut tx, call, &link).await?;
        tx.commit().await?;
        if created {
            self.changes.publish(call.id);
        }
        Ok(created)
    }

    async fn insert_rule(&self, rule: &NewRule, now: DateTime<Utc>) -> Result<Rule, StoreError> {
        self.insert_rule_row(rule, now).await
    }

    async fn get_rule(&self, id: RuleId) -> Result<Option<Rule>, StoreError> {
        self.rule_by_id(id).await
    }

    async fn list_rules(&self) -> Result<Vec<Rule>, StoreError> {
        self.all_rules().await
    }

    async fn set_rule_status(
        &self,
        id: RuleId,
        status: RuleStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Rule>, StoreError> {
        self.change_rule_status(id, status, now).await
    }

    async fn delete_rule(&self, id: RuleId) -> Result<bool, StoreError> {
        self.remove_rule(id).await
    }

    async fn rules_to_materialise(&self, late_before: DateTime<Utc>) -> Result<Vec<Rule>, StoreError> {
        self.rules_needing_calls(late_before).await
    }

    async fn step_rule(&self, step: &RuleStep) -> Result<Stepped, StoreError> {
        self.apply_rule_step(step).await
    }
}

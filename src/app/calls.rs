//! The calls service: what the web layer asks of the domain (schedule, cancel, look up, list),
//! so handlers never talk to the store or the queue themselves.

use std::sync::Arc;

use chrono_tz::Tz;
use tokio::sync::broadcast;

use crate::app::queue::TimedQueue;
use crate::domain::clock;
use crate::domain::hours::{callee_zone, quiet_hours_message};
use crate::domain::outcomes::{self, DayOutcomes};
use crate::domain::policy::{Policy, PolicyError};
use crate::domain::state::{self, CallEvent, Transition};
use crate::domain::{Call, CallId, CallStatus, HistoryEntry, Schedule, ScheduleInput, ScheduleRules, ValidationErrors};
use crate::store::{CallPatch, Inserted, ListQuery, NewCall, Store, StoreError};

/// Why a call could not be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Some fields are wrong.
    #[error("invalid request")]
    Invalid(ValidationErrors),
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    /// The destination or the number of calls is not allowed.
    #[error(transparent)]
    Refused(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ScheduleError {
    /// The store refusing the call for a limit is a policy refusal, not a failure.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LimitReached(hit) => Self::Refused(PolicyError::LimitReached(hit)),
            other => Self::Store(other),
        }
    }
}

/// Why a call could not be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such call.
    #[error("no call with this id")]
    NotFound,
    /// Dialing has begun (or the call is over).
    #[error("the call is already {0}; only scheduled calls can be cancelled")]
    TooLate(CallStatus),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A scheduled call, and whether it was stored by an earlier request with the same key.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The call.
    pub call: Call,
    /// True when an earlier request with the same Idempotency-Key created it.
    pub replayed: bool,
}

/// The calls service; cheap to clone.
#[derive(Clone)]
pub struct CallService {
    store: Arc<dyn Store>,
    queue: TimedQueue,
    policy: Policy,
}

impl CallService {
    /// A service over `store` that tells `queue` about new calls.
    pub fn new(store: Arc<dyn Store>, queue: TimedQueue, policy: Policy) -> Self {
        Self { store, queue, policy }
    }

    /// Checks and stores a call. With an idempotency key, a retried request returns the call the
    /// first one stored (even after its time has passed).
    #[tracing::instrument(skip(self, input))]
    pub async fn schedule(&self, input: &ScheduleInput, key: Option<&str>) -> Result<Scheduled, ScheduleError> {
        let fingerprint = fingerprint(input);
        if let Some(key) = key
            && let Some((call, hash)) = self.store.find_idempotent(key).await?
        {
            return replay(call, &hash, &fingerprint);
        }
        // "In the future" by the store's clock, which decides when the call is due, so that every
        // instance accepts the same instants whatever its own clock says.
        let rules = ScheduleRules { now: self.store.now().await?, horizon: self.policy.horizon };
        let schedule = Schedule::parse(input, rules).map_err(ScheduleError::Invalid)?;
        self.check_policy(input, &schedule)?;
        let new =
            NewCall { id: CallId::new(), schedule, idempotency: key.map(|k| (k.to_owned(), fingerprint.clone())) };
        match self.store.insert_call(&new).await? {
            Inserted::Created(call) => {
                self.queue.scheduled(call.id, call.due_at);
                Ok(Scheduled { call, replayed: false })
            }
            Inserted::Existing(call, hash) => replay(call, &hash, &fingerprint),
        }
    }

    /// Refuses destinations outside the allowed countries and number types, and moments in the
    /// callee's quiet hours (named against the field that set the moment). The limits on calls
    /// ringing near one another are kept by the store as it stores the call.
    fn check_policy(&self, input: &ScheduleInput, schedule: &Schedule) -> Result<(), ScheduleError> {
        self.policy.check_destination(&schedule.to)?;
        let zone = callee_zone(schedule.timezone, &schedule.to);
        if let Some(allowed) = self.policy.hours.next_allowed(schedule.due_at.instant(), zone) {
            let field = if input.at.is_some() { "at" } else { "time" };
            return Err(ScheduleError::Invalid(ValidationErrors::one(
                field,
                quiet_hours_message(&self.policy.hours, schedule.due_at.instant(), allowed, zone),
            )));
        }
        Ok(())
    }

    /// Cancels a call that has not been dialed yet.
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, id: CallId) -> Result<Call, CancelError> {
        let call = self.store.get_call(id).await?.ok_or(CancelError::NotFound)?;
        let Transition::To(next) = state::transition(call.status, &CallEvent::Cancelled) else {
            return Err(CancelError::TooLate(call.status));
        };
        let entry = HistoryEntry::now("cancelled", None);
        if !self.store.change_status(id, call.status, next, &CallPatch::default(), &entry).await? {
            // The queue claimed it in the meantime.
            let now = self.store.get_call(id).await?.map_or(CallStatus::Dialing, |c| c.status);
            return Err(CancelError::TooLate(now));
        }
        self.queue.cancelled(id);
        self.store.get_call(id).await?.ok_or(CancelError::NotFound)
    }

    /// One call with its history.
    pub async fn get(&self, id: CallId) -> Result<Option<(Call, Vec<HistoryEntry>)>, StoreError> {
        let Some(call) = self.store.get_call(id).await? else { return Ok(None) };
        let history = self.store.history(id).await?;
        Ok(Some((call, history)))
    }

    /// Calls, newest first.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Call>, StoreError> {
        self.store.list_calls(query).await
    }

    /// Listens to the ids of calls that change from now on.
    pub fn changes(&self) -> broadcast::Receiver<CallId> {
        self.store.changes()
    }

    /// How the calls that ended on each of the last `days` days went, days counted in `zone`,
    /// oldest first.
    pub async fn daily_outcomes(&self, zone: Tz, days: u32) -> Result<Vec<DayOutcomes>, StoreError> {
        let (days, since) = outcomes::window(clock::now(), zone, days);
        let counts = self.store.outcome_counts(since, outcomes::BUCKET_SECS).await?;
        Ok(outcomes::by_day(&counts, zone, &days))
    }

    /// Checks the store answers.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

fn replay(call: Call, hash: &str, fingerprint: &str) -> Result<Scheduled, ScheduleError> {
    if hash != fingerprint {
        return Err(ScheduleError::KeyReused);
    }
    Ok(Scheduled { call, replayed: true })
}

/// What identifies a request for idempotency: its fields as sent, trimmed.
fn fingerprint(input: &ScheduleInput) -> String {
    let fields = [&input.to, &input.at, &input.date, &input.time, &input.timezone];
    let parts: Vec<&str> = fields.iter().map(|f| f.as_deref().map_or("", str::trim)).collect();
    // Unit separators cannot appear in the fields' valid values, so the join is unambiguous.
    parts.join("\u{1f}")
}

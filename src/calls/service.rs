//! The calls service: what the web layer asks of the domain (schedule, cancel, look up, list),
//! so handlers never talk to the store or the queue themselves.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::broadcast;

use super::outcomes::{self, DayOutcomes};
use super::state::{self, CallEvent, Transition};
use super::{
    Call, CallId, CallStatus, HistoryEntry, PhoneNumber, Schedule, ScheduleInput, ScheduleRules, ValidationErrors,
};
use crate::clock;
use crate::config::{Countries, Limits};
use crate::scheduler::TimedQueue;
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
    /// The number is in a country calls may not go to.
    #[error("calls to {} are not allowed here; allowed: {allowed}", region.as_deref().unwrap_or("this number"))]
    CountryNotAllowed {
        /// The number's region, when it has one.
        region: Option<String>,
        /// The allowed regions, in words.
        allowed: String,
    },
    /// A scheduling limit was reached.
    #[error("too many calls scheduled {scope} in the last {window}: the limit is {limit}")]
    RateLimited {
        /// "to this number" or "in all".
        scope: &'static str,
        /// "hour" or "day".
        window: &'static str,
        /// The limit.
        limit: u64,
        /// The window's length in seconds (when a retry may succeed at the latest).
        window_secs: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// What scheduling allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How far ahead calls may be scheduled.
    pub horizon: chrono::Duration,
    /// Where calls may go.
    pub countries: Countries,
    /// How many calls may be scheduled.
    pub limits: Limits,
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
        self.check_policy(&schedule.to).await?;
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

    /// Refuses destinations outside the allowed countries and numbers or totals over the limits.
    async fn check_policy(&self, to: &PhoneNumber) -> Result<(), ScheduleError> {
        let region = to.region();
        if !self.policy.countries.allows(region.as_deref()) {
            let allowed = match &self.policy.countries {
                Countries::Any => "anywhere".to_owned(),
                Countries::Only(list) => list.join(", "),
            };
            return Err(ScheduleError::CountryNotAllowed { region, allowed });
        }
        let (hour, day) = (Duration::from_secs(3600), Duration::from_secs(86_400));
        let limits = self.policy.limits;
        let checks = [
            (Some(to), "to this number", limits.per_number_hour, limits.per_number_day),
            (None, "in all", limits.global_hour, limits.global_day),
        ];
        for (number, scope, per_hour, per_day) in checks {
            if per_hour == 0 && per_day == 0 {
                continue;
            }
            let (in_hour, in_day) = self.store.count_scheduled(number, hour, day).await?;
            if per_hour > 0 && in_hour >= per_hour {
                return Err(ScheduleError::RateLimited { scope, window: "hour", limit: per_hour, window_secs: 3600 });
            }
            if per_day > 0 && in_day >= per_day {
                return Err(ScheduleError::RateLimited { scope, window: "day", limit: per_day, window_secs: 86_400 });
            }
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

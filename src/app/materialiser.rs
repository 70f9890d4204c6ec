//! The rule materialiser: gives every active rule its next call, an ordinary scheduled call that
//! the timed queue fires like any other. The decisions (which occurrence, made up or skipped after
//! downtime, moved out of quiet hours) are [`crate::domain::plan`]'s; this part reads the rules that
//! need a call, applies each plan in one store step, and tells the queue.
//!
//! It runs at start-up before the queue (so catch-up is decided before anything late is dialled),
//! every 15 s as a housekeeping job, and right after a rule is created or resumed. A rule gets its
//! next call only once its previous one has left `scheduled`; since cron rules have one-minute
//! resolution, the 15 s tick always makes the next call before it is due.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::queue::TimedQueue;
use crate::domain::Rule;
use crate::domain::limits::LimitHit;
use crate::domain::plan::{self, Plan, PlanSettings, Waiting, WaitingAction};
use crate::domain::state::{self, CallEvent, Transition};
use crate::domain::{CallId, CallStatus, DueAt, HistoryEntry, Schedule};
use crate::store::{CallPatch, NewCall, RuleCalls, RuleStep, Stepped, StoreError};

/// What materialising one rule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// It got its next call.
    Call,
    /// It needed nothing (or another instance made the call first).
    Nothing,
    /// Its next call would break a limit: that occurrence is skipped, and the rule says so.
    Refused(LimitHit),
}

/// Makes rules' calls; cheap to clone.
#[derive(Clone)]
pub struct Materialiser {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn RuleCalls>,
    queue: TimedQueue,
    settings: PlanSettings,
}

impl Materialiser {
    /// A materialiser over `store` that tells `queue` about the calls it makes.
    pub fn new(store: Arc<dyn RuleCalls>, queue: TimedQueue, settings: PlanSettings) -> Self {
        Self { inner: Arc::new(Inner { store, queue, settings }) }
    }

    /// Gives every rule that needs one its next call at the store's clock's now, which every
    /// instance sharing the store agrees on; returns how many calls were made.
    pub async fn pass_now(&self) -> Result<usize, StoreError> {
        let now = self.inner.store.now().await?;
        self.pass(now).await
    }

    /// Gives every rule that needs one its next call at `now`; returns how many calls were made.
    #[tracing::instrument(skip(self))]
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let rules = self.inner.store.rules_to_materialise(now - self.inner.settings.grace).await?;
        let mut made = 0;
        for rule in rules {
            if self.materialise(&rule, now).await? == Made::Call {
                made += 1;
            }
        }
        Ok(made)
    }

    /// Gives `rule` (as just read) its next call at `now`, if it needs one.
    pub async fn materialise(&self, rule: &Rule, now: DateTime<Utc>) -> Result<Made, StoreError> {
        let waiting = rule.next_call.map(|(id, due)| Waiting { id, due: due.instant() });
        let plan = plan::plan(rule, waiting, now, self.inner.settings);
        self.apply(rule, plan, now).await
    }

    async fn apply(&self, rule: &Rule, plan: Plan, now: DateTime<Utc>) -> Result<Made, StoreError> {
        if let (Some((id, action)), Some((_, due))) = (plan.waiting, rule.next_call) {
            self.settle_waiting(id, due, action, now).await?;
        }
        let Some(cursor_to) = plan.cursor else { return Ok(Made::Nothing) };
        let next = plan.next.map(|next| {
            let schedule = Schedule {
                to: rule.to.clone(),
                due_at: DueAt::planned(next.due),
                timezone: rule.timezone,
                note: next.note.clone(),
            };
            (NewCall { id: CallId::new(), schedule, idempotency: None }, next)
        });
        let occurrence = next.as_ref().map(|(call, next)| (call.clone(), next.occurrence));
        let step = RuleStep { rule: rule.id, cursor_from: rule.cursor, cursor_to, note: plan.note, occurrence };
        match (self.inner.store.step_rule(&step).await, next) {
            (Ok(Stepped::Moved { created: true }), Some((call, _))) => {
                self.inner.queue.scheduled(call.id, call.schedule.due_at);
                Ok(Made::Call)
            }
            (Err(StoreError::LimitReached(hit)), Some((_, next))) => {
                // The occurrence is skipped, not retried each pass: the cursor moves past it and
                // the rule says why.
                tracing::warn!(rule_id = %rule.id, %hit, "a rule's call was not made: a limit is reached");
                let note = Some(plan::limit_note(rule, &next, &hit));
                self.inner.store.step_rule(&RuleStep { occurrence: None, note, ..step }).await?;
                Ok(Made::Refused(hit))
            }
            (stepped, _) => stepped.map(|_| Made::Nothing),
        }
    }

    /// Dials a late waiting call now, or ends it missed, as the catch-up policy decided.
    async fn settle_waiting(
        &self,
        id: CallId,
        due: DueAt,
        action: WaitingAction,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        match action {
            WaitingAction::DialNow => {
                let detail = "it fell due while the service was down; made up now under the rule's catch-up policy";
                let entry = HistoryEntry::now("caught_up", Some(detail.into()));
                match store.reschedule(id, due, DueAt::planned(now), &entry).await {
                    Ok(true) => self.inner.queue.scheduled(id, DueAt::planned(now)),
                    Ok(false) => {}
                    Err(StoreError::LimitReached(hit)) => self.miss(id, format!("not made up: {hit}")).await?,
                    Err(error) => return Err(error),
                }
            }
            WaitingAction::Miss(reason) => self.miss(id, reason).await?,
        }
        Ok(())
    }

    /// Ends a rule's waiting call `missed` for `reason`.
    async fn miss(&self, id: CallId, reason: String) -> Result<(), StoreError> {
        if let Transition::To(next) = state::transition(CallStatus::Scheduled, &CallEvent::Missed) {
            let patch = CallPatch { last_error: Some(reason.clone()), ..CallPatch::default() };
            let entry = HistoryEntry::now("missed", Some(reason));
            self.inner.store.change_status(id, CallStatus::Scheduled, next, &patch, &entry).await?;
        }
        Ok(())
    }
}

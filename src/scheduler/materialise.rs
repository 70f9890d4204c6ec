//! The rule materialiser: gives every active rule its next call, an ordinary scheduled call that
//! the timed queue fires like any other. The decisions (which occurrence, made up or skipped after
//! downtime, moved out of quiet hours) are [`crate::rules::plan`]'s; this part reads the rules that
//! need a call, applies each plan in one store step, and tells the queue.
//!
//! It runs at start-up before the queue (so catch-up is decided before anything late is dialled),
//! every 15 s as a housekeeping job, and right after a rule is created or resumed. A rule gets its
//! next call only once its previous one has left `scheduled`; since cron rules have one-minute
//! resolution, the 15 s tick always makes the next call before it is due.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::TimedQueue;
use crate::calls::state::{self, CallEvent, Transition};
use crate::calls::{CallId, CallStatus, DueAt, HistoryEntry, Schedule};
use crate::rules::Rule;
use crate::rules::plan::{self, Plan, PlanSettings, Waiting, WaitingAction};
use crate::store::{CallPatch, NewCall, RuleStep, Stepped, Store, StoreError};

/// Makes rules' calls; cheap to clone.
#[derive(Clone)]
pub struct Materialiser {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    queue: TimedQueue,
    settings: PlanSettings,
}

impl Materialiser {
    /// A materialiser over `store` that tells `queue` about the calls it makes.
    pub fn new(store: Arc<dyn Store>, queue: TimedQueue, settings: PlanSettings) -> Self {
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
            let waiting = rule.next_call.map(|(id, due)| Waiting { id, due: due.instant() });
            let plan = plan::plan(&rule, waiting, now, self.inner.settings);
            if self.apply(&rule, plan, now).await? {
                made += 1;
            }
        }
        Ok(made)
    }

    async fn apply(&self, rule: &Rule, plan: Plan, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if let (Some((id, action)), Some((_, due))) = (plan.waiting, rule.next_call) {
            self.settle_waiting(id, due, action, now).await?;
        }
        let Some(cursor_to) = plan.cursor else { return Ok(false) };
        let occurrence = plan.next.map(|next| {
            let schedule = Schedule {
                to: rule.to.clone(),
                due_at: DueAt::planned(next.due),
                timezone: rule.timezone,
                note: next.note,
            };
            (NewCall { id: CallId::new(), schedule, idempotency: None }, next.occurrence)
        });
        let step = RuleStep { rule: rule.id, cursor_from: rule.cursor, cursor_to, note: plan.note, occurrence };
        let stepped = self.inner.store.step_rule(&step).await?;
        match (stepped, &step.occurrence) {
            (Stepped::Moved { created: true }, Some((call, _))) => {
                self.inner.queue.scheduled(call.id, call.schedule.due_at);
                Ok(true)
            }
            _ => Ok(false),
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
                if store.reschedule(id, due, DueAt::planned(now), &entry).await? {
                    self.inner.queue.scheduled(id, DueAt::planned(now));
                }
            }
            WaitingAction::Miss(reason) => {
                if let Transition::To(next) = state::transition(CallStatus::Scheduled, &CallEvent::Missed) {
                    let patch = CallPatch { last_error: Some(reason.clone()), ..CallPatch::default() };
                    let entry = HistoryEntry::now("missed", Some(reason));
                    store.change_status(id, CallStatus::Scheduled, next, &patch, &entry).await?;
                }
            }
        }
        Ok(())
    }
}

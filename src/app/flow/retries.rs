//! Retries: a call that ended busy or unanswered gets its next try here, as a new scheduled call
//! of its own, keyed by (first call of the chain, retry number) so that a replayed hangup never
//! schedules it twice. The timed queue is told, and checks the callee's calling hours when it
//! falls due.

use super::{CallFlow, FlowError};
use crate::domain::RuleStatus;
use crate::domain::{CallId, CallStatus, DueAt, Schedule};
use crate::store::{NewCall, StoreError};

impl CallFlow {
    /// Schedules the next retry of a call that ended busy or unanswered, if the policy wants one
    /// and its rule (if any) is still active. Harmless to repeat.
    pub(super) async fn retry_if_due(&self, id: CallId) -> Result<(), FlowError> {
        let store = &self.inner.store;
        let Some(call) = store.get_call(id).await? else { return Ok(()) };
        let policy = self.inner.settings.retry;
        let Some(number) = policy.next(call.status, call.retry.map_or(0, |(_, n)| n)) else { return Ok(()) };
        if let Some(rule) = call.rule
            && store.get_rule(rule).await?.is_none_or(|rule| rule.status != RuleStatus::Active)
        {
            return Ok(());
        }
        let spacing = chrono::Duration::from_std(policy.spacing).unwrap_or(chrono::Duration::MAX);
        // Due by the store's clock, which the queue that fires it goes by.
        let due = DueAt::planned(store.now().await? + spacing);
        let why = if call.status == CallStatus::Busy { "the line was busy" } else { "nobody answered" };
        let note = format!("retry {number} of {}: {why}", policy.retries);
        let schedule = Schedule { to: call.to.clone(), due_at: due, timezone: call.timezone, note: Some(note.clone()) };
        let retry = NewCall { id: CallId::new(), schedule, idempotency: None };
        let first = call.retry.map_or(call.id, |(first, _)| first);
        match store.insert_retry(&retry, first, number, call.rule).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(StoreError::LimitReached(hit)) => {
                self.note(call.id, "retry_refused", Some(format!("{note} not scheduled: {hit}"))).await?;
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        let when = due.instant().with_timezone(&call.timezone.tz()).format("%a %d %b %H:%M %Z");
        self.note(call.id, "retry_scheduled", Some(format!("{note}; due {when} (call {})", retry.id))).await?;
        if let Some(queue) = self.inner.queue.get() {
            queue.scheduled(retry.id, due);
        }
        Ok(())
    }
}

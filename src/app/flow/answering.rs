//! What happens once someone (or something) picks up: the joke is chosen at once, and spoken
//! either straight away or, with answering-machine detection on, after Telnyx's verdict (see
//! [`crate::domain::machine`]). Webhooks may arrive out of order, so a verdict or a greeting-end
//! that overtakes `call.answered` stands for the answer itself: both can only follow one.

use super::{CallFlow, FlowError};
use crate::domain::machine::{MachinePolicy, MachineStep};
use crate::domain::state::{CallEvent, Transition};
use crate::domain::{Call, CallStatus, HistoryEntry};
use crate::store::CallPatch;
use crate::telnyx::webhook::Webhook;

impl CallFlow {
    pub(super) async fn on_answered(&self, call: Call, hook: &Webhook, entry: HistoryEntry) -> Result<(), FlowError> {
        let (step, call) = self.mark_answered(call, hook, entry).await?;
        if step == Transition::Ignore {
            return Ok(());
        }
        if self.inner.settings.machine.waits_for_verdict() {
            if let Transition::To(_) = step {
                let detail = "the joke waits for Telnyx to tell a person from an answering machine";
                self.note(call.id, "awaiting_machine_detection", Some(detail.into())).await?;
            }
            return Ok(());
        }
        self.speak_stored_joke(&call).await
    }

    /// Moves the call to `answered` with its joke chosen (the joke already chosen, on a replay),
    /// recording `entry`; returns the transition and the call as it now is.
    async fn mark_answered(
        &self,
        call: Call,
        hook: &Webhook,
        entry: HistoryEntry,
    ) -> Result<(Transition, Call), FlowError> {
        let joke = match &call.joke {
            Some(joke) => joke.clone(),
            None => {
                let previous = self.inner.store.last_joke_for(&call.to).await?;
                self.inner.jokes.pick(previous.as_deref()).await.text
            }
        };
        let patch = CallPatch { call_control_id: hook.call_control_id.clone(), joke: Some(joke), last_error: None };
        let id = call.id;
        let step = self.advance_with(call, CallEvent::Answered, patch, entry).await?;
        let call = self.inner.store.get_call(id).await?.ok_or(FlowError::Vanished)?;
        Ok((step, call))
    }

    /// A verdict or a greeting-end for a call not yet known to be answered: it was.
    async fn answered_by_implication(&self, call: Call, hook: &Webhook) -> Result<Call, FlowError> {
        if !matches!(call.status, CallStatus::Dialing | CallStatus::Ringing) {
            return Ok(call);
        }
        let detail = format!("{} arrived before call.answered, which it can only follow", hook.event_type);
        let (_, call) = self.mark_answered(call, hook, HistoryEntry::now("answered_implied", Some(detail))).await?;
        Ok(call)
    }

    /// Acts on the answering-machine verdict of a call still waiting for it (a replay after the
    /// joke started, or a verdict arriving after the hangup, is only recorded).
    pub(super) async fn on_machine_verdict(
        &self,
        call: Call,
        hook: &Webhook,
        result: Option<&str>,
        entry: HistoryEntry,
    ) -> Result<(), FlowError> {
        self.inner.store.append_history(call.id, &entry).await?;
        let policy = self.inner.settings.machine;
        if !policy.waits_for_verdict() {
            return Ok(());
        }
        let call = self.answered_by_implication(call, hook).await?;
        if call.status != CallStatus::Answered {
            return Ok(());
        }
        match policy.on_verdict(result) {
            MachineStep::Speak => self.speak_stored_joke(&call).await,
            MachineStep::AwaitGreeting => {
                let detail = "an answering machine answered; the joke is left as a message after its greeting";
                Ok(self.note(call.id, "awaiting_greeting_end", Some(detail.into())).await?)
            }
            MachineStep::HangUp => self.hang_up_on_machine(call).await,
        }
    }

    async fn hang_up_on_machine(&self, call: Call) -> Result<(), FlowError> {
        let reason = "an answering machine answered; hung up without leaving the joke";
        let patch = CallPatch { last_error: Some(reason.into()), ..CallPatch::default() };
        let (id, attempt, control_id) = (call.id, call.attempt, call.call_control_id.clone());
        let entry = HistoryEntry::now("machine_hangup", Some(reason.into()));
        let step = self.advance_with(call, CallEvent::MachineHungUp, patch, entry).await?;
        match (step, control_id) {
            (Transition::To(_), Some(control_id)) => self.hang_up(id, attempt, &control_id).await,
            _ => Ok(()),
        }
    }

    /// The machine's greeting ended: the joke is left as a message, if the call still waits for it.
    pub(super) async fn on_greeting_ended(
        &self,
        call: Call,
        hook: &Webhook,
        entry: HistoryEntry,
    ) -> Result<(), FlowError> {
        self.inner.store.append_history(call.id, &entry).await?;
        if self.inner.settings.machine != MachinePolicy::LeaveMessage {
            return Ok(());
        }
        let call = self.answered_by_implication(call, hook).await?;
        if call.status == CallStatus::Answered {
            return self.speak_stored_joke(&call).await;
        }
        Ok(())
    }

    /// Speaks the joke chosen when the call was answered.
    async fn speak_stored_joke(&self, call: &Call) -> Result<(), FlowError> {
        let (Some(control_id), Some(joke)) = (call.call_control_id.as_deref(), call.joke.clone()) else {
            return Ok(());
        };
        self.speak(call.id, call.attempt, control_id, joke).await
    }
}

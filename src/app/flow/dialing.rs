//! Dialing a claimed call under its lease, and taking over dials whose instance stopped.
//!
//! A dial goes only while this instance holds the call's lease under the call's attempt (the
//! fencing token), and the lease is renewed while Telnyx is being asked; if it is lost (another
//! instance took the dial over), this instance stops asking. Every send of a call's dial, first or
//! resent, carries the same command id, so Telnyx places the call once however many instances
//! sent it within its dedupe window.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{CallFlow, FlowError, client_state};
use crate::app::queue::Dispatch;
use crate::domain::state::CallEvent;
use crate::domain::{Call, CallStatus, HistoryEntry};
use crate::store::{CallPatch, TakenOver, Takeover};
use crate::telnyx::client::{DialAccepted, DialRequest, RetriesPolicy, TelnyxError};

/// How long after a call's first dial the dial may be sent again with the same command id:
/// Telnyx ignores a repeated command id for 60 s; the margin covers the request's own time.
const RESEND_WINDOW: Duration = Duration::from_secs(45);

/// The webhooks the flow moves a call on: each one lost would leave the call where it stands.
const FLOW_EVENTS: [&str; 7] = [
    "call.initiated",
    "call.answered",
    "call.machine.detection.ended",
    "call.machine.greeting.ended",
    "call.speak.started",
    "call.speak.ended",
    "call.hangup",
];

/// The pauses before Telnyx's further attempts at each of them: the most Telnyx allows (five
/// retries, 60 s in all), doubling, so a restart of up to a minute loses none.
const RETRY_PAUSES_MS: [u64; 5] = [2_000, 4_000, 8_000, 16_000, 30_000];

fn webhook_retries() -> BTreeMap<String, RetriesPolicy> {
    let policy = RetriesPolicy { retries_ms: RETRY_PAUSES_MS.to_vec() };
    FLOW_EVENTS.iter().map(|event| ((*event).to_owned(), policy.clone())).collect()
}

impl CallFlow {
    /// Dials a claimed call; a refused dial ends the call as failed with Telnyx's reason, an
    /// ambiguous one (no response after the request left) waits for webhooks instead of re-dialing.
    #[tracing::instrument(skip(self, call), fields(call_id = %call.id, attempt = call.attempt))]
    pub async fn dial(&self, call: Call) {
        if let Err(error) = self.try_dial(call).await {
            tracing::error!(error = ?error, "could not record a dial's outcome; the call is reconciled when its lease ends");
        }
    }

    async fn try_dial(&self, call: Call) -> Result<(), FlowError> {
        let store = &self.inner.store;
        // The fence: a dial only goes while this instance still holds the call under its attempt.
        if !store.renew_lease(call.id, &self.inner.settings.lease, call.attempt).await? {
            tracing::warn!("the call's lease passed to another instance before its dial went; that one dials it");
            return Ok(());
        }
        let request = self.dial_request(&call);
        let dialed = tokio::select! {
            dialed = self.inner.telnyx.dial(&request) => dialed,
            () = self.keep_lease(&call) => {
                tracing::warn!("lost the call's lease while dialing; its new holder sends the same dial again");
                return Ok(());
            }
        };
        match dialed {
            Ok(accepted) => self.accepted(&call, accepted).await,
            Err(TelnyxError::Ambiguous) => {
                let detail =
                    "no answer from Telnyx after the request was sent; waiting for its webhooks, not re-dialing";
                Ok(self.note(call.id, "dial_ambiguous", Some(detail.into())).await?)
            }
            Err(error) => {
                let patch = CallPatch { last_error: Some(error.to_string()), ..CallPatch::default() };
                let entry = HistoryEntry::now("dial_failed", Some(error.to_string()));
                self.advance_with(call, CallEvent::DialFailed, patch, entry).await.map(drop)
            }
        }
    }

    fn dial_request(&self, call: &Call) -> DialRequest {
        let settings = &self.inner.settings;
        DialRequest {
            connection_id: settings.connection_id.clone(),
            to: call.to.as_str().to_owned(),
            from: settings.from.as_str().to_owned(),
            webhook_url: Some(settings.webhook_url.clone()),
            webhook_url_method: Some("POST".into()),
            client_state: Some(client_state(call.id)),
            command_id: Some(call.id.dial_command_id()),
            timeout_secs: Some(settings.ring_timeout_secs),
            answering_machine_detection: settings.machine.dial_mode(),
            time_limit_secs: Some(settings.time_limit_secs),
            webhook_retries_policies: webhook_retries(),
        }
    }

    async fn accepted(&self, call: &Call, accepted: DialAccepted) -> Result<(), FlowError> {
        let store = &self.inner.store;
        let patch = CallPatch { call_control_id: Some(accepted.call_control_id.clone()), ..CallPatch::default() };
        let entry = HistoryEntry::now("dial_accepted", Some(accepted.call_control_id));
        if !store.change_status(call.id, CallStatus::Dialing, CallStatus::Dialing, &patch, &entry).await? {
            // Its webhooks moved the call on first.
            store.append_history(call.id, &entry).await?;
        }
        Ok(())
    }

    /// Renews the call's lease every third of its length; returns only once it is lost: taken
    /// over, or not confirmed for as long as it lasts (the store cannot be reached).
    async fn keep_lease(&self, call: &Call) {
        let terms = &self.inner.settings.lease;
        let mut held_until = Instant::now() + terms.ttl;
        loop {
            tokio::time::sleep(terms.ttl / 3).await;
            let asked = Instant::now();
            match self.inner.store.renew_lease(call.id, terms, call.attempt).await {
                Ok(true) => held_until = asked + terms.ttl,
                Ok(false) => return,
                Err(error) if Instant::now() + terms.ttl / 3 >= held_until => {
                    tracing::warn!(error = ?error, "could not renew the call's lease before it ran out");
                    return;
                }
                Err(error) => tracing::warn!(error = ?error, "could not renew the call's lease; trying again"),
            }
        }
    }

    /// Deals with dials whose outcome is unknown (the service stopped, or another instance died,
    /// between claiming a call and hearing from Telnyx). Each is taken over in one conditional step
    /// by the store's clock, bumping its attempt. While Telnyx's command-id window is open the dial
    /// is sent again with the same command id, which Telnyx ignores if the first one arrived; after
    /// that the call is failed, never re-dialed, since the phone may have rung. With
    /// `own_previous_run`, this instance's own leases count as orphaned (use it at start-up).
    /// Resending may wait on Telnyx for a long time (retries, `Retry-After`), so that runs in the
    /// background. Returns how many were taken over.
    pub async fn recover_orphaned_dials(&self, own_previous_run: bool) -> Result<usize, FlowError> {
        let (store, settings) = (&self.inner.store, &self.inner.settings);
        let owner = own_previous_run.then_some(settings.lease.owner.as_str());
        let takeover = Takeover { own_previous_run, resend_within: RESEND_WINDOW };
        let mut recovered = 0;
        for call in store.orphaned_dials(owner).await? {
            let Some(taken) = store.take_over_dial(call.id, &settings.lease, &settings.limits, &takeover).await? else {
                continue;
            };
            recovered += 1;
            let flow = self.clone();
            self.inner.tasks.spawn(async move {
                if let Err(error) = flow.resend_or_abandon(taken).await {
                    tracing::error!(error = ?error, "could not settle an orphaned dial; retried when its lease ends");
                }
            });
        }
        Ok(recovered)
    }

    async fn resend_or_abandon(&self, taken: TakenOver) -> Result<(), FlowError> {
        match taken {
            TakenOver::Resend(call) => {
                let detail = format!(
                    "its dial's outcome was unknown (the instance dialing it stopped); sent again with the same \
                     command id by {} under attempt {}",
                    self.inner.settings.lease.owner, call.attempt
                );
                self.note(call.id, "dial_resent", Some(detail)).await?;
                self.try_dial(call).await
            }
            TakenOver::Abandon(call) => {
                let reason = "the dial's outcome is unknown (the service stopped while dialing) and too much time has passed to resend it safely; not re-dialed to avoid ringing twice";
                let patch = CallPatch { last_error: Some(reason.into()), ..CallPatch::default() };
                let entry = HistoryEntry::now("dial_abandoned", Some(reason.into()));
                self.advance_with(call, CallEvent::DialFailed, patch, entry).await.map(drop)
            }
        }
    }
}

#[async_trait]
impl Dispatch for CallFlow {
    async fn dispatch(&self, call: Call) {
        self.dial(call).await;
    }
}

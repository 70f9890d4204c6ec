//! The call flow: dialing a claimed call, and applying Telnyx's webhook events to calls one at a
//! time, in arrival order, then issuing the next command (answered → speak a joke, or wait for the
//! answering-machine verdict first; speak ended → hang up). Every command id is derived from
//! (call, step, attempt), so replaying an event after a crash re-sends the same command and Telnyx
//! ignores the repeat. One call's events are applied by one task of one instance at a time: a lock
//! per call here, and the store's lock across instances. A call that ends busy or unanswered gets
//! its retry here, keyed by (first call, retry number), so a replayed hangup never schedules a
//! second one. An event moves a call only if it is about the leg the call was dialed on (see
//! [`state::admits`]); any other is kept in the call's history with the reason and changes nothing.

mod answering;
mod dialing;
mod retries;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio_util::task::TaskTracker;

use super::inbox::Inbox;
use crate::app::queue::QueueHandle;
use crate::domain::clock;
use crate::domain::machine::MachinePolicy;
use crate::domain::retry::RetryPolicy;
use crate::domain::state::{self, CallEvent, Transition};
use crate::domain::{Call, CallId, CallStatus, HistoryEntry, PhoneNumber};
use crate::jokes::Jokes;
use crate::store::{CallLives, CallPatch, DialLimits, InboxEvent, LeaseTerms, StoreError};
use crate::telnyx::client::{HangupRequest, SpeakRequest, TelnyxClient};
use crate::telnyx::webhook::{self, EventKind, Webhook, WebhookError};

/// How often applying one inbox event may fail before it is closed with its error kept.
const MAX_EVENT_ATTEMPTS: u32 = 5;

/// Why an event could not be applied (it stays in the inbox and is retried).
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The store failed.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// The stored body is not a webhook (it was checked at intake, so this means corruption).
    #[error("the stored webhook body is unreadable")]
    Webhook(#[from] WebhookError),
    /// A call read a moment ago is gone (calls are never deleted, so this means corruption).
    #[error("the call is no longer in the store")]
    Vanished,
}

/// The settings of outgoing calls.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The Call Control application id.
    pub connection_id: String,
    /// The caller id.
    pub from: PhoneNumber,
    /// Where Telnyx sends this call's webhooks.
    pub webhook_url: String,
    /// Text-to-speech voice.
    pub voice: String,
    /// Speech language, when the voice takes one.
    pub language: Option<String>,
    /// How long the phone rings before Telnyx gives up.
    pub ring_timeout_secs: u32,
    /// How long an answered call may last before Telnyx ends it by itself, so a call this
    /// service lost track of is not billed for Telnyx's default four hours.
    pub time_limit_secs: u32,
    /// This instance's name on the claims it holds (stable across restarts), and how long a
    /// claim holds unless renewed.
    pub lease: LeaseTerms,
    /// Dial pacing and the most calls at once, which resent dials count against too.
    pub limits: DialLimits,
    /// What to do when an answering machine picks up.
    pub machine: MachinePolicy,
    /// How busy and unanswered calls are retried.
    pub retry: RetryPolicy,
}

/// Applies events and sends commands; cheap to clone.
#[derive(Clone)]
pub struct CallFlow {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CallLives>,
    inbox: Inbox,
    telnyx: TelnyxClient,
    jokes: Jokes,
    settings: FlowSettings,
    /// One lock per call key, so one call's events never apply concurrently.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tasks: TaskTracker,
    /// The timed queue, told about retries; set once it exists (the queue holds this flow).
    queue: OnceLock<QueueHandle>,
}

/// The key that groups a webhook's events: our call id from `client_state` when it carries one,
/// else Telnyx's call_control_id, else the event itself.
pub fn call_key(hook: &Webhook) -> String {
    hook.client_state
        .as_deref()
        .and_then(webhook::decode_client_state)
        .and_then(|text| text.parse::<CallId>().ok())
        .map(|id| id.to_string())
        .or_else(|| hook.call_control_id.clone())
        .unwrap_or_else(|| format!("event:{}", hook.id))
}

impl CallFlow {
    /// A flow over `store` speaking to `telnyx` (starts the inbox writer: needs a Tokio runtime).
    pub fn new(store: Arc<dyn CallLives>, telnyx: TelnyxClient, jokes: Jokes, settings: FlowSettings) -> Self {
        let inbox = Inbox::start(store.clone());
        let inner = Inner {
            store,
            inbox,
            telnyx,
            jokes,
            settings,
            locks: Mutex::default(),
            tasks: TaskTracker::new(),
            queue: OnceLock::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Tells the flow which timed queue to wake when it schedules a retry.
    pub fn wake_with(&self, queue: QueueHandle) {
        // A second queue would be a wiring mistake; the first one stays.
        let _ = self.inner.queue.set(queue);
    }

    /// Records a verified webhook in the inbox and, when it is new, applies it in the background.
    /// Returns false for a duplicate (already recorded) event.
    pub async fn accept(&self, hook: &Webhook, body: Vec<u8>) -> Result<bool, StoreError> {
        let key = call_key(hook);
        let event = InboxEvent {
            event_id: hook.id.clone(),
            call_key: key.clone(),
            event_type: hook.event_type.clone(),
            body,
            received_at: clock::now(),
        };
        let fresh = self.inner.inbox.record(event).await?;
        if fresh {
            self.spawn_drain(key);
        }
        Ok(fresh)
    }

    /// Applies the pending inbox events of `call_key` in a background task.
    pub fn spawn_drain(&self, call_key: String) {
        let flow = self.clone();
        self.inner.tasks.spawn(async move { flow.drain(&call_key).await });
    }

    /// Waits (at most `bound`) for background event processing to finish, at shutdown.
    pub async fn close(&self, bound: std::time::Duration) {
        self.inner.tasks.close();
        if tokio::time::timeout(bound, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("shutdown: webhook events still being applied; they are replayed at next start");
        }
    }

    /// Applies every pending event of one call, oldest first; stops at the first failure so a
    /// later event never overtakes an earlier one.
    #[tracing::instrument(skip(self))]
    pub async fn drain(&self, call_key: &str) {
        let lock = self.lock_for(call_key);
        let guard = lock.lock().await;
        if let Err(error) = self.drain_exclusively(call_key).await {
            tracing::error!(error = ?error, "could not apply webhook events; kept in the inbox for retry");
        }
        drop(guard);
        self.release_lock(call_key, lock);
    }

    /// Drains under the store's lock on the call. When another instance holds it, this one leaves
    /// its events to that one, which looks for newer events after letting go, as this one does.
    async fn drain_exclusively(&self, call_key: &str) -> Result<(), StoreError> {
        let store = &self.inner.store;
        loop {
            let Some(held) = store.lock_events(call_key).await? else { return Ok(()) };
            let drained = self.drain_locked(call_key).await;
            held.release().await;
            // After a failure the rest waits for housekeeping, so it keeps its order.
            if !drained? || store.inbox_pending(call_key).await?.is_empty() {
                return Ok(());
            }
        }
    }

    /// Applies the pending events; false when it stopped at one that failed.
    async fn drain_locked(&self, call_key: &str) -> Result<bool, StoreError> {
        let store = &self.inner.store;
        for event in store.inbox_pending(call_key).await? {
            match self.apply(&event.body).await {
                Ok(()) => store.inbox_finish(event.seq, None, false).await?,
                Err(error) => {
                    let give_up = event.attempts + 1 >= MAX_EVENT_ATTEMPTS;
                    tracing::warn!(error = ?error, seq = event.seq, give_up, "applying a webhook event failed");
                    store.inbox_finish(event.seq, Some(&error.to_string()), give_up).await?;
                    if !give_up {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(key.to_owned()).or_default())
    }

    fn release_lock(&self, key: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.inner.locks.lock().unwrap_or_else(PoisonError::into_inner);
        drop(lock);
        // Only the map still holds it: nobody waits for this call, so forget the lock.
        if locks.get(key).is_some_and(|held| Arc::strong_count(held) == 1) {
            locks.remove(key);
        }
    }

    async fn apply(&self, body: &[u8]) -> Result<(), FlowError> {
        let hook = webhook::parse(body)?;
        let Some(call) = self.find_call(&hook).await? else {
            tracing::info!(event_id = %hook.id, event_type = %hook.event_type, "event for a call we did not make; ignored");
            return Ok(());
        };
        if let Err(stray) = state::admits(call.status, call.call_control_id.as_deref(), hook.call_control_id.as_deref())
        {
            return Ok(self.ignore(&call, &hook, &stray).await?);
        }
        let entry = HistoryEntry::now(hook.event_type.clone(), describe(&hook.kind));
        let id = call.id;
        match &hook.kind {
            EventKind::Initiated => self.advance(call, CallEvent::Initiated, &hook, entry).await.map(|_| ()),
            EventKind::Answered => self.on_answered(call, &hook, entry).await,
            EventKind::SpeakStarted => self.advance(call, CallEvent::SpeakStarted, &hook, entry).await.map(|_| ()),
            EventKind::SpeakEnded { .. } => self.on_speak_ended(call, entry).await,
            EventKind::Hangup { cause, .. } => {
                let event = CallEvent::Hangup { cause: cause.clone() };
                self.advance(call, event, &hook, entry).await?;
                self.retry_if_due(id).await
            }
            EventKind::MachineDetectionEnded { result } => {
                self.on_machine_verdict(call, &hook, result.as_deref(), entry).await?;
                self.retry_if_due(id).await
            }
            EventKind::MachineGreetingEnded { .. } => self.on_greeting_ended(call, &hook, entry).await,
            EventKind::Other => Ok(self.inner.store.append_history(call.id, &entry).await?),
        }
    }

    /// Records in the call's history that `hook` came and why it changed nothing; the event is
    /// then done with, like any applied one.
    async fn ignore(&self, call: &Call, hook: &Webhook, stray: &state::Stray) -> Result<(), StoreError> {
        let leg =
            hook.call_control_id.as_deref().map_or_else(|| "naming no leg".to_owned(), |leg| format!("on leg {leg}"));
        let detail = format!("{} {leg} ignored: {stray}", hook.event_type);
        tracing::warn!(call_id = %call.id, event_id = %hook.id, %detail, "event not about this call's leg");
        self.inner.store.append_history(call.id, &HistoryEntry::now("event_ignored", Some(detail))).await
    }

    async fn find_call(&self, hook: &Webhook) -> Result<Option<Call>, StoreError> {
        let store = &self.inner.store;
        if let Ok(id) = call_key(hook).parse::<CallId>() {
            return store.get_call(id).await;
        }
        match &hook.call_control_id {
            Some(id) => store.find_by_call_control_id(id).await,
            None => Ok(None),
        }
    }

    /// Runs the state machine for `event` and stores the outcome with `entry`. Returns what the
    /// transition was, so the caller knows whether a follow-up command is due.
    async fn advance(
        &self,
        call: Call,
        event: CallEvent,
        hook: &Webhook,
        entry: HistoryEntry,
    ) -> Result<Transition, FlowError> {
        let patch = CallPatch { call_control_id: hook.call_control_id.clone(), ..CallPatch::default() };
        self.advance_with(call, event, patch, entry).await
    }

    async fn advance_with(
        &self,
        mut call: Call,
        event: CallEvent,
        patch: CallPatch,
        entry: HistoryEntry,
    ) -> Result<Transition, FlowError> {
        let store = &self.inner.store;
        loop {
            let step = state::transition(call.status, &event);
            let Transition::To(next) = step else {
                let mut entry = entry.clone();
                if step == Transition::Ignore {
                    entry.detail = Some(late_detail(entry.detail.as_deref(), call.status));
                }
                store.append_history(call.id, &entry).await?;
                return Ok(step);
            };
            if store.change_status(call.id, call.status, next, &patch, &entry).await? {
                return Ok(step);
            }
            // The call moved under us (a dial result racing a webhook): look again.
            match store.get_call(call.id).await? {
                Some(fresh) => call = fresh,
                None => return Ok(Transition::Ignore),
            }
        }
    }

    async fn speak(&self, id: CallId, attempt: u32, control_id: &str, joke: String) -> Result<(), FlowError> {
        let settings = &self.inner.settings;
        let request = SpeakRequest {
            payload: joke.clone(),
            voice: settings.voice.clone(),
            language: settings.language.clone(),
            payload_type: Some("text".into()),
            client_state: Some(client_state(id)),
            command_id: Some(id.command_id("speak", attempt)),
        };
        match self.inner.telnyx.speak(control_id, &request).await {
            Ok(()) => Ok(self.note(id, "speak_requested", Some(joke)).await?),
            Err(error) => {
                self.note(id, "speak_failed", Some(error.to_string())).await?;
                if error.is_call_ended() { Ok(()) } else { self.hang_up(id, attempt, control_id).await }
            }
        }
    }

    async fn on_speak_ended(&self, call: Call, entry: HistoryEntry) -> Result<(), FlowError> {
        self.inner.store.append_history(call.id, &entry).await?;
        match (&call.call_control_id, call.status.is_terminal()) {
            (Some(control_id), false) => self.hang_up(call.id, call.attempt, control_id).await,
            _ => Ok(()),
        }
    }

    async fn hang_up(&self, id: CallId, attempt: u32, control_id: &str) -> Result<(), FlowError> {
        let request =
            HangupRequest { client_state: Some(client_state(id)), command_id: Some(id.command_id("hangup", attempt)) };
        match self.inner.telnyx.hangup(control_id, &request).await {
            Ok(()) => Ok(self.note(id, "hangup_requested", None).await?),
            // The callee hung up first: the call is over either way.
            Err(error) if error.is_call_ended() => {
                Ok(self.note(id, "hangup_requested", Some("call had already ended".into())).await?)
            }
            Err(error) => Ok(self.note(id, "hangup_failed", Some(error.to_string())).await?),
        }
    }

    async fn note(&self, id: CallId, kind: &str, detail: Option<String>) -> Result<(), StoreError> {
        self.inner.store.append_history(id, &HistoryEntry::now(kind, detail)).await
    }

    /// Starts re-applying every call's pending inbox events (after a restart or failed attempts),
    /// one background task per call, so a call whose commands wait on Telnyx holds up no other.
    pub async fn drain_all(&self) -> Result<(), StoreError> {
        for key in self.inner.store.inbox_pending_keys().await? {
            self.spawn_drain(key);
        }
        Ok(())
    }
}

fn client_state(id: CallId) -> String {
    BASE64.encode(id.to_string())
}

fn describe(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::SpeakEnded { status } => status.as_ref().map(|s| format!("status {s}")),
        EventKind::Hangup { cause, source, sip_cause } => Some(format!(
            "cause {}, by {}, SIP {}",
            cause.as_deref().unwrap_or("unknown"),
            source.as_deref().unwrap_or("unknown"),
            sip_cause.as_deref().unwrap_or("unknown"),
        )),
        EventKind::MachineDetectionEnded { result } | EventKind::MachineGreetingEnded { result } => {
            result.as_ref().map(|r| format!("result {r}"))
        }
        _ => None,
    }
}

fn late_detail(detail: Option<&str>, status: CallStatus) -> String {
    match detail {
        Some(detail) => format!("{detail} (arrived late: the call was already {status})"),
        None => format!("arrived late: the call was already {status}"),
    }
}

//! All calls of a run and the operations the API performs on them: dial, commands (with
//! `command_id` idempotency) and status, plus the scheduling of each call's timed steps.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::activity::Outbox;
use crate::call::{Call, Plan, Step};
use crate::config::Timing;
use crate::core::Core;
use crate::delivery;
use crate::errors::ApiFailure;
use crate::lock;
use crate::validate::{Command, DialRequest};
use crate::view::CallSnapshot;

/// Calls by call_control_id, and recent Dial command_ids with the answer they got.
#[derive(Default)]
pub(crate) struct Registry {
    calls: HashMap<String, Call>,
    dials: HashMap<String, (Instant, Value)>,
}

impl Registry {
    /// Forgets calls that ended longer ago than Telnyx keeps them, and Dial command_ids
    /// older than the idempotency window.
    fn forget_old(&mut self, timing: &Timing) {
        self.calls.retain(|_, call| !call.expired(timing.status_retention));
        let window = timing.command_id_window;
        self.dials.retain(|_, (at, _)| at.elapsed() < window);
    }
}

impl Core {
    /// Places a call. A Dial repeating a recent command_id gets the first answer again.
    pub(crate) fn dial(self: &Arc<Self>, request: DialRequest) -> Result<Value, ApiFailure> {
        let registry = &mut *lock(&self.registry);
        registry.forget_old(&self.timing);
        if let Some((_, earlier)) = request.command_id.as_ref().and_then(|id| registry.dials.get(id)) {
            return Ok(earlier.clone());
        }
        if !self.pacing.admit() {
            let limit = self.pacing.limit();
            return Err(ApiFailure::too_many_dials(limit.max_dials, limit.window.as_secs()));
        }
        let behaviour = self.behaviours.for_destination(&request.to);
        let (outbox, events) = Outbox::open(Arc::clone(&self.activity));
        let mut call = Call::new(request, behaviour, outbox);
        let plan = call.start(&self.timing);
        let response = call.dial_response();
        let id = call.ids.call_control_id.clone();
        if let Some(command_id) = &call.request.command_id {
            registry.dials.insert(command_id.clone(), (Instant::now(), response.clone()));
        }
        registry.calls.insert(id.clone(), call);
        delivery::spawn_worker(self, events);
        self.schedule(&id, plan);
        Ok(response)
    }

    /// Runs a command on a call. A repeated command_id is answered `ok` and does nothing.
    pub(crate) fn command(self: &Arc<Self>, id: &str, command: Command) -> Result<Value, ApiFailure> {
        let registry = &mut *lock(&self.registry);
        registry.forget_old(&self.timing);
        let call = registry.calls.get_mut(id).ok_or_else(ApiFailure::unknown_call)?;
        let command_id = command.command_id().map(str::to_owned);
        let window = self.timing.command_id_window;
        if command_id.as_deref().is_some_and(|id| call.already_did(id, window)) {
            return Ok(command_ok());
        }
        let plan = match command {
            Command::Speak(request) => call.speak(request, &self.timing)?,
            Command::Hangup(fields) => call.hang_up(fields)?,
            Command::Answer(_) => return Err(call.refuse_answer()),
        };
        if let Some(command_id) = command_id {
            call.remember(command_id);
        }
        self.schedule(id, plan);
        Ok(command_ok())
    }

    /// The call's status, while it is live and for a while after it ended.
    pub(crate) fn status(&self, id: &str) -> Result<Value, ApiFailure> {
        let registry = lock(&self.registry);
        registry
            .calls
            .get(id)
            .filter(|call| !call.expired(self.timing.status_retention))
            .map(Call::status)
            .ok_or_else(ApiFailure::unknown_call)
    }

    /// Every call of the run, oldest first.
    pub(crate) fn calls(&self) -> Vec<CallSnapshot> {
        let mut calls: Vec<CallSnapshot> = lock(&self.registry).calls.values().map(Call::snapshot).collect();
        calls.sort_by_key(|call| call.started_at);
        calls
    }

    /// Schedules each step of `plan` for the call `id`.
    fn schedule(self: &Arc<Self>, id: &str, plan: Plan) {
        for (delay, step) in plan {
            let core = Arc::clone(self);
            let id = id.to_owned();
            self.spawn(async move {
                tokio::time::sleep(delay).await;
                core.run_step(&id, step);
            });
        }
    }

    fn run_step(self: &Arc<Self>, id: &str, step: Step) {
        let plan = match lock(&self.registry).calls.get_mut(id) {
            Some(call) => call.apply(step, &self.timing),
            None => return,
        };
        self.schedule(id, plan);
    }
}

/// The body of every successful command.
fn command_ok() -> Value {
    json!({ "data": { "result": "ok" } })
}

//! One simulated call: its ids and state, what its callee does, and the events each command or
//! scheduled step emits. Steps are planned with a delay and checked again when they fire, so a
//! step overtaken by events (a ring after the caller hung up) does nothing.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::time::Instant;

use crate::activity::Outbox;
use crate::behaviour::Behaviour;
use crate::config::Timing;
use crate::errors::ApiFailure;
use crate::events::EventType;
use crate::ids::CallIds;
use crate::validate::{CommandFields, DialRequest, SpeakRequest};

/// Something the call does by itself after a delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Ring,
    RingTimeout,
    MachineDetected,
    GreetingEnded,
    SpeakDone(u64),
    CalleeHangsUp(u64),
    TimeLimit,
}

/// Steps to schedule, each after its delay.
pub(crate) type Plan = Vec<(Duration, Step)>;

/// How a call ended, as reported in `call.hangup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hangup {
    pub(crate) cause: &'static str,
    source: &'static str,
    sip: &'static str,
}

impl Hangup {
    const fn new(cause: &'static str, source: &'static str, sip: &'static str) -> Self {
        Self { cause, source, sip }
    }
}

const BUSY: Hangup = Hangup::new("user_busy", "callee", "486");
const REJECTED: Hangup = Hangup::new("call_rejected", "callee", "603");
const RING_TIMEOUT: Hangup = Hangup::new("timeout", "caller", "487");
const NO_ANSWER: Hangup = Hangup::new("no_answer", "caller", "487");
const CALLER_CANCEL: Hangup = Hangup::new("originator_cancel", "caller", "487");
const CALLER_CLEARING: Hangup = Hangup::new("normal_clearing", "caller", "200");
const CALLEE_CLEARING: Hangup = Hangup::new("normal_clearing", "callee", "200");
const TIME_LIMIT: Hangup = Hangup::new("time_limit", "caller", "unspecified");

/// Where a call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Ringing,
    Answered,
    Ended(Hangup),
}

/// Speaks of one call: played one after another, numbered from 0.
#[derive(Debug, Default)]
pub(crate) struct Speech {
    queue: VecDeque<String>,
    pub(crate) current: Option<u64>,
    pub(crate) started: u64,
}

pub(crate) struct Call {
    pub(crate) ids: CallIds,
    pub(crate) request: DialRequest,
    pub(crate) behaviour: Behaviour,
    /// The latest client_state set by the Dial or a command; echoed in every later event.
    pub(crate) client_state: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) answered_at: Option<DateTime<Utc>>,
    pub(crate) ended: Option<(DateTime<Utc>, Instant)>,
    pub(crate) speech: Speech,
    /// command_ids acted on, with when, for the idempotency window.
    commands: HashMap<String, Instant>,
    pub(crate) outbox: Outbox,
}

impl Call {
    pub(crate) fn new(request: DialRequest, behaviour: Behaviour, outbox: Outbox) -> Self {
        Self {
            ids: CallIds::fresh(),
            client_state: request.client_state.clone(),
            request,
            behaviour,
            phase: Phase::Ringing,
            started_at: Utc::now(),
            answered_at: None,
            ended: None,
            speech: Speech::default(),
            commands: HashMap::new(),
            outbox,
        }
    }

    /// The call goes out: `call.initiated`, then the callee's reaction is planned.
    pub(crate) fn start(&mut self, timing: &Timing) -> Plan {
        let extra = json!({ "direction": "outgoing", "state": "bridging" });
        self.emit_with_start_time(EventType::Initiated, extra);
        if self.behaviour == Behaviour::NoAnswer {
            vec![(self.request.timeout.min(timing.no_answer_cap), Step::RingTimeout)]
        } else {
            vec![(timing.ring, Step::Ring)]
        }
    }

    /// Runs a planned step if the call is still where the step expects it.
    pub(crate) fn apply(&mut self, step: Step, timing: &Timing) -> Plan {
        let answered = self.phase == Phase::Answered;
        match step {
            Step::Ring if self.phase == Phase::Ringing => self.callee_reacts(timing),
            Step::RingTimeout if self.phase == Phase::Ringing => {
                self.end(if self.request.retry_on_timeout { RING_TIMEOUT } else { NO_ANSWER });
                Vec::new()
            }
            Step::MachineDetected if answered => {
                let machine = self.behaviour == Behaviour::Machine;
                self.emit(
                    EventType::MachineDetectionEnded,
                    json!({ "result": if machine { "machine" } else { "human" } }),
                );
                if machine && self.request.report_greeting_end {
                    return vec![(timing.machine_greeting, Step::GreetingEnded)];
                }
                Vec::new()
            }
            Step::GreetingEnded if answered => {
                // The simulated voicemail ends its greeting with a beep.
                self.emit(EventType::MachineGreetingEnded, json!({ "result": "beep_detected" }));
                Vec::new()
            }
            Step::SpeakDone(n) if answered && self.speech.current == Some(n) => {
                self.speech.current = None;
                self.emit(EventType::SpeakEnded, json!({ "status": "completed" }));
                self.next_speech(timing)
            }
            Step::CalleeHangsUp(n) if answered && self.speech.current == Some(n) => {
                self.end(CALLEE_CLEARING);
                Vec::new()
            }
            Step::TimeLimit if answered => {
                self.end(TIME_LIMIT);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn callee_reacts(&mut self, timing: &Timing) -> Plan {
        match self.behaviour {
            Behaviour::Busy => self.end(BUSY),
            Behaviour::Reject => self.end(REJECTED),
            // A no-answer call is never planned a ring: it only waits for its timeout.
            Behaviour::NoAnswer => {}
            Behaviour::Answer | Behaviour::Machine | Behaviour::HangupMidJoke => {
                return self.answered(timing);
            }
        }
        Vec::new()
    }

    fn answered(&mut self, timing: &Timing) -> Plan {
        self.phase = Phase::Answered;
        self.answered_at = Some(Utc::now());
        self.emit_with_start_time(EventType::Answered, json!({ "state": "answered" }));
        let mut plan = vec![(self.request.time_limit.min(timing.time_limit_cap), Step::TimeLimit)];
        if self.request.detect_machine {
            plan.push((timing.machine_detection, Step::MachineDetected));
        }
        plan
    }

    /// `speak`: queued behind any speak in progress.
    pub(crate) fn speak(&mut self, request: SpeakRequest, timing: &Timing) -> Result<Plan, ApiFailure> {
        match self.phase {
            Phase::Ended(_) => return Err(ApiFailure::call_ended()),
            Phase::Ringing => return Err(ApiFailure::not_answered()),
            Phase::Answered => {}
        }
        self.adopt(request.common);
        self.speech.queue.push_back(request.payload);
        Ok(self.next_speech(timing))
    }

    fn next_speech(&mut self, timing: &Timing) -> Plan {
        if self.speech.current.is_some() {
            return Vec::new();
        }
        let Some(text) = self.speech.queue.pop_front() else {
            return Vec::new();
        };
        let number = self.speech.started;
        self.speech.started += 1;
        self.speech.current = Some(number);
        self.emit(EventType::SpeakStarted, json!({}));
        let length = timing.speech_length(&text);
        if self.behaviour == Behaviour::HangupMidJoke && number == 0 {
            vec![(length / 2, Step::CalleeHangsUp(number))]
        } else {
            vec![(length, Step::SpeakDone(number))]
        }
    }

    /// `hangup` from the caller: a cancel while ringing, a normal clearing once answered.
    pub(crate) fn hang_up(&mut self, fields: CommandFields) -> Result<Plan, ApiFailure> {
        let hangup = match self.phase {
            Phase::Ended(_) => return Err(ApiFailure::call_ended()),
            Phase::Ringing => CALLER_CANCEL,
            Phase::Answered => CALLER_CLEARING,
        };
        self.adopt(fields);
        self.end(hangup);
        Ok(Vec::new())
    }

    /// `answer` never applies: Dial creates outgoing legs, and only incoming ones are answered.
    pub(crate) fn refuse_answer(&self) -> ApiFailure {
        match self.phase {
            Phase::Ended(_) => ApiFailure::call_ended(),
            _ => ApiFailure::not_incoming(),
        }
    }

    /// Whether `command_id` was acted on within `window`, so a repeat must do nothing.
    pub(crate) fn already_did(&mut self, command_id: &str, window: Duration) -> bool {
        let now = Instant::now();
        self.commands.retain(|_, at| now.duration_since(*at) < window);
        self.commands.contains_key(command_id)
    }

    pub(crate) fn remember(&mut self, command_id: String) {
        self.commands.insert(command_id, Instant::now());
    }

    fn adopt(&mut self, fields: CommandFields) {
        if fields.client_state.is_some() {
            self.client_state = fields.client_state;
        }
    }

    fn end(&mut self, hangup: Hangup) {
        if self.speech.current.take().is_some() {
            self.emit(EventType::SpeakEnded, json!({ "status": "call_hangup" }));
        }
        self.speech.queue.clear();
        self.phase = Phase::Ended(hangup);
        self.ended = Some((Utc::now(), Instant::now()));
        let extra = json!({
            "state": "hangup",
            "hangup_cause": hangup.cause,
            "hangup_source": hangup.source,
            "sip_hangup_cause": hangup.sip,
            "call_quality_stats": self.quality_stats(),
        });
        self.emit_with_start_time(EventType::Hangup, extra);
        self.outbox.close();
    }
}

//! Webhook events: one occurrence on a call (fixed id and time), wrapped per delivery attempt
//! in Telnyx's envelope `{data:{record_type,event_type,id,occurred_at,payload},meta:{attempt,delivered_to}}`.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// The call event types the simulator sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Initiated,
    Answered,
    MachineDetectionEnded,
    MachineGreetingEnded,
    SpeakStarted,
    SpeakEnded,
    Hangup,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Initiated => "call.initiated",
            EventType::Answered => "call.answered",
            EventType::MachineDetectionEnded => "call.machine.detection.ended",
            EventType::MachineGreetingEnded => "call.machine.greeting.ended",
            EventType::SpeakStarted => "call.speak.started",
            EventType::SpeakEnded => "call.speak.ended",
            EventType::Hangup => "call.hangup",
        }
    }
}

/// One event of one call, ready to be delivered (possibly several times).
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) id: Uuid,
    pub(crate) event_type: EventType,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) call_control_id: String,
    pub(crate) url: String,
    pub(crate) payload: Value,
    /// The pauses before further delivery attempts the dial asked for, if it did.
    pub(crate) retries: Option<Vec<Duration>>,
}

impl Event {
    /// A new occurrence, now, with a fresh id.
    pub(crate) fn new(event_type: EventType, call_control_id: &str, url: &str, payload: Value) -> Self {
        Self {
            id: Uuid::new_v4(),
            event_type,
            occurred_at: Utc::now(),
            call_control_id: call_control_id.to_owned(),
            url: url.to_owned(),
            payload,
            retries: None,
        }
    }

    /// The body of delivery attempt `attempt`.
    pub(crate) fn envelope(&self, attempt: u32) -> Value {
        json!({
            "data": {
                "record_type": "event",
                "event_type": self.event_type.as_str(),
                "id": self.id,
                "occurred_at": timestamp_micros(self.occurred_at),
                "payload": self.payload,
            },
            "meta": { "attempt": attempt, "delivered_to": self.url },
        })
    }
}

/// RFC 3339 in UTC with microseconds, as in Telnyx's `occurred_at` and event `start_time`.
pub(crate) fn timestamp_micros(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// RFC 3339 in UTC with milliseconds, as in Telnyx's call status `start_time`/`end_time`.
pub(crate) fn timestamp_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

//! Reading the body of a Telnyx Call Control webhook into the few facts the call flow needs.
//!
//! Parsing is deliberately lenient: real deliveries carry fields the spec does not list,
//! `client_state` is `null` when never set, `meta` may be missing and new event types appear
//! without notice. Only the event id (used for deduplication) and the event type are required.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One webhook delivery, reduced to what the service acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Unique event id (`data.id`); a redelivery carries the same id.
    pub id: String,
    /// The raw event type, e.g. `call.answered`, kept even when [`EventKind::Other`].
    pub event_type: String,
    /// When Telnyx says the event happened; `None` when absent or not RFC 3339.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The call leg the event is about (absent in some events, e.g. machine detection examples).
    pub call_control_id: Option<String>,
    /// Telnyx's id of the call leg.
    pub call_leg_id: Option<String>,
    /// Telnyx's id of the whole call session.
    pub call_session_id: Option<String>,
    /// The base64 `client_state` echoed back, still encoded; see [`decode_client_state`].
    pub client_state: Option<String>,
    /// Delivery attempt number from `meta.attempt`, when sent.
    pub attempt: Option<u32>,
    /// What happened, with the payload fields that matter for it.
    pub kind: EventKind,
}

/// The event types the call flow reacts to; anything else is [`EventKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `call.initiated`: Telnyx started the call.
    Initiated,
    /// `call.answered`: the callee picked up.
    Answered,
    /// `call.speak.started`: text-to-speech began playing.
    SpeakStarted,
    /// `call.speak.ended`: playback finished; `status` is completed, call_hangup or cancelled_amd.
    SpeakEnded {
        /// How playback ended.
        status: Option<String>,
    },
    /// `call.hangup`: the call is over.
    Hangup {
        /// `hangup_cause`, e.g. normal_clearing, user_busy, timeout, call_rejected.
        cause: Option<String>,
        /// `hangup_source`: caller, callee or unknown.
        source: Option<String>,
        /// `sip_hangup_cause`: the SIP status as a string, e.g. "486".
        sip_cause: Option<String>,
    },
    /// `call.machine.detection.ended`: answering machine detection finished.
    MachineDetectionEnded {
        /// human, machine or not_sure.
        result: Option<String>,
    },
    /// `call.machine.greeting.ended`: a machine's greeting finished (detection in `greeting_end`
    /// or `detect_words` mode, or a beep in `detect_beep` mode).
    MachineGreetingEnded {
        /// beep_detected, ended or not_sure.
        result: Option<String>,
    },
    /// Any other event type (call.cost, call.recording.saved, ...): acknowledged and ignored.
    Other,
}

/// Why a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is not JSON at all.
    #[error("webhook body is not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// A required field is absent (or null).
    #[error("webhook field `{0}` is missing")]
    Missing(&'static str),
    /// A required field is present but has the wrong shape.
    #[error("webhook field `{field}` must be {expected}")]
    Malformed {
        /// Dotted path of the field, e.g. `data.id`.
        field: &'static str,
        /// What the field should have been.
        expected: &'static str,
    },
}

/// Parses a webhook POST body. Fails only when it is not JSON or `data.id` / `data.event_type`
/// are unusable; every other field is optional.
pub fn parse(body: &[u8]) -> Result<Webhook, WebhookError> {
    let root: Value = serde_json::from_slice(body)?;
    let data = match root.get("data") {
        None | Some(Value::Null) => return Err(WebhookError::Missing("data")),
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err(malformed("data", "an object")),
    };
    let id = required_text(data, "id", "data.id")?;
    let event_type = required_text(data, "event_type", "data.event_type")?;
    let payload = data.get("payload").unwrap_or(&Value::Null);
    Ok(Webhook {
        occurred_at: text(data, "occurred_at").and_then(parse_instant),
        call_control_id: text(payload, "call_control_id"),
        call_leg_id: text(payload, "call_leg_id"),
        call_session_id: text(payload, "call_session_id"),
        client_state: text(payload, "client_state"),
        attempt: root.pointer("/meta/attempt").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        kind: EventKind::from_payload(&event_type, payload),
        id,
        event_type,
    })
}

/// Decodes a `client_state` (standard base64 of UTF-8 text); `None` when it is not that.
pub fn decode_client_state(encoded: &str) -> Option<String> {
    let bytes = STANDARD.decode(encoded).ok()?;
    String::from_utf8(bytes).ok()
}

impl EventKind {
    fn from_payload(event_type: &str, payload: &Value) -> Self {
        match event_type {
            "call.initiated" => Self::Initiated,
            "call.answered" => Self::Answered,
            "call.speak.started" => Self::SpeakStarted,
            "call.speak.ended" => Self::SpeakEnded { status: text(payload, "status") },
            "call.hangup" => Self::Hangup {
                cause: text(payload, "hangup_cause"),
                source: text(payload, "hangup_source"),
                sip_cause: text(payload, "sip_hangup_cause"),
            },
            "call.machine.detection.ended" => Self::MachineDetectionEnded { result: text(payload, "result") },
            "call.machine.greeting.ended" => Self::MachineGreetingEnded { result: text(payload, "result") },
            _ => Self::Other,
        }
    }
}

/// A string field, or `None` when absent, null or not a string (lenient by design).
fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn required_text(object: &Value, key: &str, field: &'static str) -> Result<String, WebhookError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(WebhookError::Missing(field)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(malformed(field, "a non-empty string")),
    }
}

fn malformed(field: &'static str, expected: &'static str) -> WebhookError {
    WebhookError::Malformed { field, expected }
}

fn parse_instant(value: String) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&value).ok().map(|t| t.with_timezone(&Utc))
}

//! The webhook payloads of one call: every event carries the call's ids, connection, parties
//! and latest client_state (null when never set); call-level events add the start time and
//! state, as in Telnyx's examples.

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::call::Call;
use crate::events::{Event, EventType, timestamp_micros};

impl Call {
    /// Media counters for a call that was answered (a call that never was has none).
    pub(crate) fn quality_stats(&self) -> Value {
        let Some(answered_at) = self.answered_at else {
            return Value::Null;
        };
        let packets = ((Utc::now() - answered_at).num_milliseconds() / 20).max(0).to_string();
        json!({
            "inbound": { "jitter_max_variance": "0.00", "jitter_packet_count": "0", "mos": "4.50",
                         "packet_count": packets, "skip_packet_count": "0" },
            "outbound": { "packet_count": packets, "skip_packet_count": "0" },
        })
    }

    /// Emits an event whose payload also gives the call's start time.
    pub(crate) fn emit_with_start_time(&mut self, event_type: EventType, extra: Value) {
        let mut payload = json!({ "start_time": timestamp_micros(self.started_at) });
        merge(&mut payload, extra);
        self.emit(event_type, payload);
    }

    pub(crate) fn emit(&mut self, event_type: EventType, extra: Value) {
        let mut payload = json!({
            "call_control_id": self.ids.call_control_id,
            "call_leg_id": self.ids.call_leg_id,
            "call_session_id": self.ids.call_session_id,
            "connection_id": self.request.connection_id,
            "from": self.request.from,
            "to": self.request.to,
            "client_state": self.client_state,
        });
        merge(&mut payload, extra);
        let mut event = Event::new(event_type, &self.ids.call_control_id, &self.request.webhook_url, payload);
        event.retries = self.request.webhook_retries.get(event.event_type.as_str()).cloned();
        self.outbox.send(event);
    }
}

/// Copies the fields of object `extra` into object `target`.
fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        let extra: Map<String, Value> = extra;
        target.extend(extra);
    }
}

//! How a call looks from outside: the Dial answer, the call status (`GET /v2/calls/{id}`) and
//! the simulator's own summary for tests and `GET /sim/calls`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::behaviour::Behaviour;
use crate::call::{Call, Phase};
use crate::events::timestamp_millis;
use crate::ids::CallIds;

/// Where a call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Dialled, not answered yet.
    Ringing,
    /// The callee answered.
    Answered,
    /// Hung up.
    Ended,
}

/// The simulator's summary of one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallSnapshot {
    /// The call's ids.
    #[serde(flatten)]
    pub ids: CallIds,
    /// The Dial's connection_id.
    pub connection_id: String,
    /// Caller id.
    pub from: String,
    /// The number (or SIP URI) dialled.
    pub to: String,
    /// Where its webhooks go.
    pub webhook_url: String,
    /// What its callee does.
    pub behaviour: Behaviour,
    /// Where it is in its life.
    pub state: CallState,
    /// The latest client_state set.
    pub client_state: Option<String>,
    /// When it was dialled.
    pub started_at: DateTime<Utc>,
    /// When it was answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `hangup_cause` of its `call.hangup`.
    pub hangup_cause: Option<String>,
    /// Speaks started so far.
    pub speaks_started: u64,
}

impl Call {
    /// The 200 body of the Dial that created the call.
    pub(crate) fn dial_response(&self) -> Value {
        let mut data = self.id_fields();
        data["is_alive"] = json!(false);
        json!({ "data": data })
    }

    /// The 200 body of `GET /v2/calls/{id}`.
    pub(crate) fn status(&self) -> Value {
        let ended_at = self.ended.map(|(at, _)| at);
        let until = ended_at.unwrap_or_else(Utc::now);
        let mut data = self.id_fields();
        data["is_alive"] = json!(ended_at.is_none());
        data["start_time"] = json!(timestamp_millis(self.started_at));
        data["call_duration"] = json!((until - self.started_at).num_seconds());
        if let Some(ended_at) = ended_at {
            data["end_time"] = json!(timestamp_millis(ended_at));
        }
        json!({ "data": data })
    }

    /// Ids, record type and client_state (left out when never set: the schema types it string).
    fn id_fields(&self) -> Value {
        let mut data = json!({
            "call_control_id": self.ids.call_control_id,
            "call_leg_id": self.ids.call_leg_id,
            "call_session_id": self.ids.call_session_id,
            "record_type": "call",
        });
        if let Some(state) = &self.client_state {
            data["client_state"] = json!(state);
        }
        data
    }

    /// Whether the call ended longer than `retention` ago and is forgotten.
    pub(crate) fn expired(&self, retention: Duration) -> bool {
        self.ended.is_some_and(|(_, at)| at.elapsed() >= retention)
    }

    pub(crate) fn snapshot(&self) -> CallSnapshot {
        let (state, hangup_cause) = match self.phase {
            Phase::Ringing => (CallState::Ringing, None),
            Phase::Answered => (CallState::Answered, None),
            Phase::Ended(hangup) => (CallState::Ended, Some(hangup.cause.to_owned())),
        };
        CallSnapshot {
            ids: self.ids.clone(),
            connection_id: self.request.connection_id.clone(),
            from: self.request.from.clone(),
            to: self.request.to.clone(),
            webhook_url: self.request.webhook_url.clone(),
            behaviour: self.behaviour,
            state,
            client_state: self.client_state.clone(),
            started_at: self.started_at,
            answered_at: self.answered_at,
            ended_at: self.ended.map(|(at, _)| at),
            hangup_cause,
            speaks_started: self.speech.started,
        }
    }
}

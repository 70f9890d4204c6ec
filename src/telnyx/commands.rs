//! The bodies of the Call Control v2 commands the service sends, and the one reply it reads.
//! Field names are Telnyx's; optional fields left `None` are not sent at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Body of `POST /calls` (Telnyx `CallRequest`, the fields this service uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialRequest {
    /// The Call Control App id.
    pub connection_id: String,
    /// Destination, E.164 (`+15551234567`) or SIP URI.
    pub to: String,
    /// Caller id, +E.164.
    pub from: String,
    /// Overrides the app's webhook URL for every later event of this call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// `POST` or `GET`; this service always uses `POST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url_method: Option<String>,
    /// Base64 text echoed back in every webhook of the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Idempotency key: Telnyx ignores a repeat within 60 s. Filled in by the client when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// Seconds to ring before giving up (5..=600, Telnyx default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// `detect`, `premium`, `disabled`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answering_machine_detection: Option<String>,
    /// Seconds after which Telnyx hangs the call up by itself (30..=14400, Telnyx default 14400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_limit_secs: Option<u32>,
    /// Per event type, the pauses between Telnyx's further attempts to deliver that webhook.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub webhook_retries_policies: BTreeMap<String, RetriesPolicy>,
}

/// How Telnyx retries one type of webhook: at most 5 further attempts, at most 60 s in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetriesPolicy {
    /// The pause before each further attempt, in milliseconds.
    pub retries_ms: Vec<u64>,
}

/// Body of `POST /calls/{call_control_id}/actions/speak` (Telnyx `SpeakRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakRequest {
    /// The text (or SSML) to say, at most 3000 characters.
    pub payload: String,
    /// `<Provider>.<Model>.<VoiceId>`, e.g. `Telnyx.KokoroTTS.af`.
    pub voice: String,
    /// Language code such as `en-US` (ignored by Polly voices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `text` (default) or `ssml`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_type: Option<String>,
    /// Base64 text echoed back in later webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Idempotency key per call leg. Filled in by the client when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

/// Body of `POST /calls/{call_control_id}/actions/hangup` (Telnyx `HangupRequest`); `{}` is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HangupRequest {
    /// Base64 text echoed back in later webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Idempotency key per call leg. Filled in by the client when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

/// The ids Telnyx gave a call it accepted to dial. The outcome itself arrives by webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialAccepted {
    /// Addresses later commands for this leg.
    pub call_control_id: String,
    /// Telnyx's id of the leg.
    pub call_leg_id: String,
    /// Telnyx's id of the session.
    pub call_session_id: String,
}

/// Telnyx wraps every successful reply in `{"data": ...}`; other fields are ignored.
#[derive(Deserialize)]
pub(crate) struct DataEnvelope<T> {
    pub(crate) data: T,
}

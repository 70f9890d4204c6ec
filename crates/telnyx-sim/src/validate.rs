//! Request bodies checked the way Telnyx checks them, turned into typed requests; every problem
//! found becomes one entry of a 422 answer, with a JSON pointer to the field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::errors::ApiFailure;
use crate::fields::Fields;

/// Longest text a speak accepts.
const MAX_SPEAK_CHARS: usize = 3_000;
/// Longest caller name a dial accepts.
const MAX_DISPLAY_NAME_CHARS: usize = 128;
/// `SpeakRequest.language` values.
const LANGUAGES: [&str; 29] = [
    "arb",
    "cmn-CN",
    "cy-GB",
    "da-DK",
    "de-DE",
    "en-AU",
    "en-GB",
    "en-GB-WLS",
    "en-IN",
    "en-US",
    "es-ES",
    "es-MX",
    "es-US",
    "fr-CA",
    "fr-FR",
    "hi-IN",
    "is-IS",
    "it-IT",
    "ja-JP",
    "ko-KR",
    "nb-NO",
    "nl-NL",
    "pl-PL",
    "pt-BR",
    "pt-PT",
    "ro-RO",
    "ru-RU",
    "sv-SE",
    "tr-TR",
];
/// `CallRequest.answering_machine_detection` values.
const AMD_MODES: [&str; 6] = ["premium", "detect", "detect_beep", "detect_words", "greeting_end", "disabled"];

/// The detection modes after which Telnyx sends `call.machine.greeting.ended` for a machine.
const GREETING_END_MODES: [&str; 3] = ["greeting_end", "detect_words", "detect_beep"];

/// A valid Dial.
#[derive(Clone, Debug)]
pub(crate) struct DialRequest {
    pub(crate) connection_id: String,
    /// The number (or SIP URI) dialled: the first destination, without a DTMF suffix.
    pub(crate) to: String,
    pub(crate) from: String,
    /// The Dial's `webhook_url`, or the simulator's default one.
    pub(crate) webhook_url: String,
    pub(crate) client_state: Option<String>,
    pub(crate) command_id: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) time_limit: Duration,
    pub(crate) detect_machine: bool,
    /// Detection in a mode that also reports the end of a machine's greeting (`greeting_end`,
    /// `detect_words`, or `detect_beep`, whose beep the simulated voicemail always plays).
    pub(crate) report_greeting_end: bool,
    pub(crate) retry_on_timeout: bool,
    /// Per event type, the pauses before each further delivery attempt (`webhook_retries_policies`);
    /// an event type without one is retried on the simulator's own schedule.
    pub(crate) webhook_retries: BTreeMap<String, Vec<Duration>>,
}

/// The fields every call command shares.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommandFields {
    pub(crate) client_state: Option<String>,
    pub(crate) command_id: Option<String>,
}

/// A valid speak.
#[derive(Clone, Debug)]
pub(crate) struct SpeakRequest {
    pub(crate) payload: String,
    pub(crate) common: CommandFields,
}

/// A valid call command.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    Speak(SpeakRequest),
    Hangup(CommandFields),
    Answer(CommandFields),
}

impl Command {
    pub(crate) fn command_id(&self) -> Option<&str> {
        let common = match self {
            Command::Speak(request) => &request.common,
            Command::Hangup(fields) | Command::Answer(fields) => fields,
        };
        common.command_id.as_deref()
    }
}

/// The body as a JSON object, or the 400 Telnyx gives for anything else.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiFailure> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiFailure::unreadable_body()),
    }
}

/// Checks a Dial body; `default_webhook_url` stands in for the Call Control App's URL.
pub(crate) fn dial(body: &Map<String, Value>, default_webhook_url: Option<&str>) -> Result<DialRequest, ApiFailure> {
    let mut fields = Fields::new(body);
    let connection_id = fields.connection_id();
    let to = fields.destination("to");
    let from = fields.destination("from");
    let webhook_url = fields.webhook_url(default_webhook_url);
    let display_name = fields.text("from_display_name");
    fields.max_chars("from_display_name", display_name, MAX_DISPLAY_NAME_CHARS);
    let timeout_secs = fields.integer("timeout_secs", 30, 5..=600);
    let time_limit_secs = fields.integer("time_limit_secs", 14_400, 30..=14_400);
    let amd = fields.choice("answering_machine_detection", &AMD_MODES);
    let retry_on_timeout = fields.flag("retry_on_timeout", true);
    let webhook_retries = fields.retries_policies("webhook_retries_policies");
    let common = fields.command_fields();
    let (Some(connection_id), Some(to), Some(from), Some(webhook_url)) = (connection_id, to, from, webhook_url) else {
        return Err(fields.failure());
    };
    fields.finish(DialRequest {
        connection_id: connection_id.to_owned(),
        to: to.to_owned(),
        from: from.to_owned(),
        webhook_url,
        client_state: common.client_state,
        command_id: common.command_id,
        timeout: Duration::from_secs(timeout_secs),
        time_limit: Duration::from_secs(time_limit_secs),
        detect_machine: amd.is_some_and(|mode| mode != "disabled"),
        report_greeting_end: amd.is_some_and(|mode| GREETING_END_MODES.contains(&mode)),
        retry_on_timeout,
        webhook_retries,
    })
}

/// Checks a speak body.
pub(crate) fn speak(body: &Map<String, Value>) -> Result<SpeakRequest, ApiFailure> {
    let mut fields = Fields::new(body);
    let payload = fields.required_text("payload");
    fields.required_text("voice");
    fields.max_chars("payload", payload, MAX_SPEAK_CHARS);
    fields.choice("payload_type", &["text", "ssml"]);
    fields.choice("service_level", &["basic", "premium"]);
    fields.choice("language", &LANGUAGES);
    fields.choice("target_legs", &["self", "opposite", "both"]);
    let common = fields.command_fields();
    let Some(payload) = payload else {
        return Err(fields.failure());
    };
    fields.finish(SpeakRequest { payload: payload.to_owned(), common })
}

/// Checks an answer or hangup body (every field optional).
pub(crate) fn command(body: &Map<String, Value>) -> Result<CommandFields, ApiFailure> {
    let mut fields = Fields::new(body);
    let common = fields.command_fields();
    fields.finish(common)
}

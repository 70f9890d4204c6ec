//! Reading one request body field by field the way Telnyx validates it: each problem found
//! is collected (with a pointer to its field) instead of stopping at the first.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::behaviour::is_e164;
use crate::errors::{ApiError, ApiFailure};
use crate::validate::CommandFields;

/// Most retries a webhook retries policy may ask for.
pub(crate) const MAX_RETRIES: usize = 5;
/// Most milliseconds a webhook retries policy's pauses may add up to.
pub(crate) const MAX_RETRIES_TOTAL_MS: u64 = 60_000;

/// The pauses of one event type's policy, when it keeps to the bounds.
fn retry_pauses(policy: &Value) -> Option<Vec<Duration>> {
    let pauses = match policy.as_object()?.get("retries_ms") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => list.as_array()?.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>()?,
    };
    let keeps_bounds = pauses.len() <= MAX_RETRIES && pauses.iter().sum::<u64>() <= MAX_RETRIES_TOTAL_MS;
    keeps_bounds.then(|| pauses.into_iter().map(Duration::from_millis).collect())
}

/// Characters allowed after the `,` of a `to` that sends DTMF on answer.
const DTMF_CHARS: &str = "0123456789*#wW";

/// Reads fields of one body and collects every problem found.
pub(crate) struct Fields<'a> {
    body: &'a Map<String, Value>,
    errors: Vec<ApiError>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(body: &'a Map<String, Value>) -> Self {
        Self { body, errors: Vec::new() }
    }

    pub(crate) fn finish<T>(self, value: T) -> Result<T, ApiFailure> {
        if self.errors.is_empty() { Ok(value) } else { Err(self.failure()) }
    }

    pub(crate) fn failure(self) -> ApiFailure {
        ApiFailure::invalid(self.errors)
    }

    /// A field that is present and not null.
    fn present(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|value| !value.is_null())
    }

    pub(crate) fn text(&mut self, name: &str) -> Option<&'a str> {
        match self.present(name)? {
            Value::String(text) => Some(text),
            _ => {
                let detail = format!("The '{name}' parameter must be a string.");
                self.errors.push(ApiError::invalid(name, detail));
                None
            }
        }
    }

    pub(crate) fn required_text(&mut self, name: &str) -> Option<&'a str> {
        match self.present(name) {
            Some(Value::String(text)) if !text.trim().is_empty() => Some(text),
            Some(value) if !value.is_string() => self.text(name),
            _ => {
                self.errors.push(ApiError::missing(name));
                None
            }
        }
    }

    pub(crate) fn connection_id(&mut self) -> Option<&'a str> {
        match self.present("connection_id") {
            None => self.required_text("connection_id"),
            Some(Value::String(id)) if !id.trim().is_empty() => Some(id),
            Some(_) => {
                self.errors.push(ApiError::connection_id());
                None
            }
        }
    }

    /// `to` or `from`: an E.164 number or SIP URI. `to` may also list several destinations;
    /// all must be valid, and the simulated callee is the first.
    pub(crate) fn destination(&mut self, name: &str) -> Option<&'a str> {
        let listed: Vec<&'a Value> = match self.present(name) {
            None => return self.required_text(name),
            Some(Value::Array(items)) if name == "to" => items.iter().collect(),
            Some(value) => vec![value],
        };
        let addresses: Option<Vec<&'a str>> =
            listed.into_iter().map(|value| value.as_str().and_then(dialable)).collect();
        let first = addresses.and_then(|addresses| addresses.first().copied());
        if first.is_none() {
            self.errors.push(ApiError::not_e164(name));
        }
        first
    }

    pub(crate) fn webhook_url(&mut self, default: Option<&str>) -> Option<String> {
        let Some(url) = self.text("webhook_url").or(default) else {
            self.errors.push(ApiError::connection_id());
            return None;
        };
        let usable = reqwest::Url::parse(url).is_ok_and(|parsed| matches!(parsed.scheme(), "http" | "https"));
        if !usable {
            let detail = "The 'webhook_url' parameter must be an absolute http(s) URL.";
            self.errors.push(ApiError::invalid("webhook_url", detail));
        }
        usable.then(|| url.to_owned())
    }

    pub(crate) fn max_chars(&mut self, name: &str, text: Option<&str>, max: usize) {
        if text.is_some_and(|text| text.chars().count() > max) {
            let detail = format!("The '{name}' parameter must be at most {max} characters.");
            self.errors.push(ApiError::out_of_range(name, detail));
        }
    }

    pub(crate) fn integer(&mut self, name: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
        let Some(value) = self.present(name) else {
            return default;
        };
        match value.as_u64() {
            Some(number) if range.contains(&number) => number,
            _ => {
                let (low, high) = (range.start(), range.end());
                let detail = format!("The '{name}' parameter must be an integer from {low} to {high}.");
                self.errors.push(ApiError::out_of_range(name, detail));
                default
            }
        }
    }

    pub(crate) fn choice(&mut self, name: &str, allowed: &[&str]) -> Option<&'a str> {
        let text = self.text(name)?;
        if allowed.contains(&text) {
            return Some(text);
        }
        self.errors.push(ApiError::not_one_of(name, allowed));
        None
    }

    pub(crate) fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.present(name) {
            None => default,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => {
                let detail = format!("The '{name}' parameter must be true or false.");
                self.errors.push(ApiError::invalid(name, detail));
                default
            }
        }
    }

    /// `webhook_retries_policies`: per event type, `{"retries_ms": [...]}` with at most
    /// [`MAX_RETRIES`] pauses adding up to at most [`MAX_RETRIES_TOTAL_MS`].
    pub(crate) fn retries_policies(&mut self, name: &str) -> BTreeMap<String, Vec<Duration>> {
        let Some(value) = self.present(name) else {
            return BTreeMap::new();
        };
        let Some(policies) = value.as_object() else {
            let detail = format!("The '{name}' parameter must be an object of event types.");
            self.errors.push(ApiError::invalid(name, detail));
            return BTreeMap::new();
        };
        let mut read = BTreeMap::new();
        for (event_type, policy) in policies {
            match retry_pauses(policy) {
                Some(pauses) => {
                    read.insert(event_type.clone(), pauses);
                }
                None => {
                    let detail = format!(
                        "The '{name}' policy of '{event_type}' must be {{\"retries_ms\": [...]}} with at most \
                         {MAX_RETRIES} non-negative integers adding up to at most {MAX_RETRIES_TOTAL_MS}."
                    );
                    self.errors.push(ApiError::invalid(name, detail));
                }
            }
        }
        read
    }

    pub(crate) fn command_fields(&mut self) -> CommandFields {
        let client_state = self.text("client_state").and_then(|state| {
            if STANDARD.decode(state).is_ok() {
                return Some(state.to_owned());
            }
            let detail = "The 'client_state' parameter must be valid base64.";
            self.errors.push(ApiError::invalid("client_state", detail));
            None
        });
        CommandFields { client_state, command_id: self.text("command_id").map(str::to_owned) }
    }
}

/// The dialable part of an address: an E.164 number (maybe followed by `,` and DTMF digits,
/// which are dropped) or a SIP URI.
fn dialable(address: &str) -> Option<&str> {
    if address.starts_with("sip:") && address.len() > 4 && !address.contains(char::is_whitespace) {
        return Some(address);
    }
    let (number, digits) = address.split_once(',').unwrap_or((address, "w"));
    let digits_ok = !digits.is_empty() && digits.chars().all(|c| DTMF_CHARS.contains(c));
    (is_e164(number) && digits_ok).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::dialable;

    #[test]
    fn numbers_sip_uris_and_dtmf_suffixes_are_dialable() {
        assert_eq!(dialable("+12015550100"), Some("+12015550100"));
        assert_eq!(dialable("+12015550100,ww123#"), Some("+12015550100"));
        assert_eq!(dialable("sip:joke@example.com"), Some("sip:joke@example.com"));
    }

    #[test]
    fn local_formats_and_bad_suffixes_are_not_dialable() {
        for address in ["087 123 4567", "+0871234567", "+1201555010x", "+12015550100,", "sip:"] {
            assert_eq!(dialable(address), None, "{address}");
        }
    }
}

//! What can go wrong when talking to Telnyx, and how Telnyx's error bodies are read.

use serde::Deserialize;
use serde_json::Value;

/// Telnyx error code for a command sent to a call that has already ended.
const CALL_ALREADY_ENDED: &str = "90018";

/// Failure of a Telnyx API call. Messages never contain the API key or request bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelnyxError {
    /// The client configuration is unusable (bad base URL, key not valid in a header, ...).
    #[error("invalid Telnyx client configuration: {0}")]
    InvalidConfig(String),
    /// The call_control_id cannot address a call (empty, `.` or `..`).
    #[error("invalid call_control_id")]
    InvalidCallControlId,
    /// Telnyx refused the request (a 4xx other than 408/429); retrying would not help.
    #[error("Telnyx rejected the request with HTTP {status}: {title}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Telnyx error code, a string of digits such as "10015"; codes are reused across
        /// meanings, so read it together with `status` and `pointer`.
        code: Option<String>,
        /// Short description from Telnyx (or the HTTP reason when the body was not Telnyx's).
        title: String,
        /// Longer description from Telnyx.
        detail: Option<String>,
        /// JSON pointer to the offending request field, e.g. `/connection_id`.
        pointer: Option<String>,
    },
    /// The dial request was sent but no usable reply came back: Telnyx may or may not be placing
    /// the call. It is not retried (that could ring twice); webhooks tell what happened.
    #[error("the dial request was sent but its outcome is unknown")]
    Ambiguous,
    /// Every attempt failed with a retryable error.
    #[error("Telnyx request failed after {attempts} attempts (last: {last})")]
    Exhausted {
        /// How many requests were made.
        attempts: u32,
        /// The last failure: an HTTP status or an error kind.
        last: String,
    },
}

impl TelnyxError {
    /// True for "Call has already ended" (422, code 90018): a hangup that gets it has nothing
    /// left to do and counts as done.
    pub fn is_call_ended(&self) -> bool {
        matches!(
            self,
            Self::Rejected { status: 422, code: Some(code), .. } if code == CALL_ALREADY_ENDED
        )
    }

    /// Builds a [`TelnyxError::Rejected`] from a status and the reply body, which may be
    /// Telnyx's `{"errors":[...]}` or anything else (a proxy's HTML page, nothing at all).
    pub(crate) fn rejected(status: reqwest::StatusCode, body: &[u8]) -> Self {
        let first = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .and_then(|b| b.errors.into_iter().next())
            .unwrap_or_default();
        let generic = status.canonical_reason().unwrap_or("Unexpected response");
        Self::Rejected {
            status: status.as_u16(),
            code: first.code.and_then(code_text),
            title: first.title.unwrap_or_else(|| generic.to_owned()),
            detail: first.detail,
            pointer: first.source.and_then(|s| s.pointer),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Default, Deserialize)]
struct ErrorItem {
    code: Option<Value>,
    title: Option<String>,
    detail: Option<String>,
    source: Option<ErrorSource>,
}

#[derive(Deserialize)]
struct ErrorSource {
    pointer: Option<String>,
}

/// The spec says codes are strings; a number is accepted too rather than losing the code.
fn code_text(code: Value) -> Option<String> {
    match code {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn a_non_json_body_still_gives_a_rejection_with_the_http_reason() {
        let err = TelnyxError::rejected(StatusCode::NOT_FOUND, b"<html>nope</html>");
        assert_eq!(
            err,
            TelnyxError::Rejected { status: 404, code: None, title: "Not Found".into(), detail: None, pointer: None }
        );
    }

    #[test]
    fn a_numeric_code_is_kept_as_text() {
        let err = TelnyxError::rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"errors":[{"code":90018,"title":"Call has already ended"}]}"#,
        );
        assert!(err.is_call_ended());
    }

    #[test]
    fn call_ended_needs_both_status_422_and_code_90018() {
        let other_status =
            TelnyxError::rejected(StatusCode::BAD_REQUEST, br#"{"errors":[{"code":"90018","title":"x"}]}"#);
        assert!(!other_status.is_call_ended());
        assert!(!TelnyxError::Ambiguous.is_call_ended());
    }
}

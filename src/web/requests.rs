//! What the API handlers and the page handlers read from requests and write into answers alike:
//! a JSON object field by field, the JSON content type, ids from the path, instants as text.

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::http::header;
use chrono::{DateTime, SecondsFormat, Utc};

use super::problem::ApiError;
use crate::domain::{Call, CallId, FieldError, RuleId, ValidationErrors};

/// Reads a JSON object whose fields must be among `allowed` and be strings (or null): an unknown
/// field or a wrong type is reported against its name, like any other invalid value.
pub fn read_fields(body: &[u8], allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    };
    let mut errors = Vec::new();
    for (name, value) in &object {
        if !allowed.contains(&name.as_str()) {
            errors.push((name.clone(), format!("unknown field; expected one of {}", allowed.join(", "))));
        } else if !value.is_string() && !value.is_null() {
            errors.push((name.clone(), "must be a string".into()));
        }
    }
    if !errors.is_empty() {
        let errors = errors.into_iter().map(|(field, message)| FieldError { field, message }).collect();
        return Err(ApiError::Validation(ValidationErrors(errors)));
    }
    Ok(object.into_iter().filter_map(|(name, value)| value.as_str().map(|text| (name, text.to_owned()))).collect())
}

/// True when the request says its body is JSON.
pub fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Parses a call id from the path; a malformed id is simply a call that does not exist.
pub fn path_id(raw: &str) -> Result<CallId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no call with id `{}`", raw.chars().take(64).collect::<String>())))
}

/// Parses a rule id from the path; a malformed id is simply a rule that does not exist.
pub fn rule_path_id(raw: &str) -> Result<RuleId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::NotFound(format!("no recurring call with id `{}`", raw.chars().take(64).collect::<String>()))
    })
}

/// An instant as the API writes it: RFC 3339 UTC to the second.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The call's due time in its own zone, e.g. `Tue 24 Nov 2026 14:05 GMT`.
pub fn local_time(call: &Call) -> String {
    call.due_at.instant().with_timezone(&call.timezone.tz()).format("%a %d %b %Y %H:%M %Z").to_string()
}

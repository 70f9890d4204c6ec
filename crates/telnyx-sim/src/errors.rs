//! Telnyx-shaped API errors: the HTTP status plus `{"errors":[{code,title,detail,source}]}`,
//! with the codes and titles Telnyx documents for each case.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

/// One entry of the `errors` array (`call-control_Error` in the schemas).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ApiError {
    code: &'static str,
    title: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Value>,
}

impl ApiError {
    fn new(code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { code, title, detail: detail.into(), source: None, meta: None }
    }

    /// Points the error at a field of the request body, as Telnyx does for validation errors.
    fn at(mut self, field: &str) -> Self {
        self.source = Some(json!({ "pointer": format!("/{field}") }));
        self
    }

    /// A required field is absent, null or blank (10004).
    pub(crate) fn missing(field: &str) -> Self {
        let detail = format!("The '{field}' parameter is required and cannot be blank.");
        Self::new("10004", "Missing required parameter", detail).at(field)
    }

    /// A field holds something that is not a usable value (10015, Telnyx's generic code).
    pub(crate) fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::new("10015", "Invalid value", detail).at(field)
    }

    /// A phone number field is neither E.164 nor a SIP URI (10016).
    pub(crate) fn not_e164(field: &str) -> Self {
        let detail = format!("The '{field}' parameter must be in E164 format.");
        Self::new("10016", "Phone number must be in +E164 format", detail).at(field)
    }

    /// The connection id is blank, or the call would have nowhere to send webhooks (10015).
    pub(crate) fn connection_id() -> Self {
        let detail = "The requested connection_id (Call Control App ID) is either invalid or does \
                      not exist. Only Call Control Apps with valid webhook URL are accepted.";
        Self::new("10015", "Invalid value for connection_id (Call Control App ID)", detail).at("connection_id")
    }

    /// A value outside its enumeration (10032).
    pub(crate) fn not_one_of(field: &str, allowed: &[&str]) -> Self {
        let detail = format!("The value must be one of: {}.", allowed.join(", "));
        Self::new("10032", "Invalid enumerated value", detail).at(field)
    }

    /// A number or a length outside its allowed range (10033).
    pub(crate) fn out_of_range(field: &str, detail: impl Into<String>) -> Self {
        Self::new("10033", "Value outside of range", detail).at(field)
    }
}

/// A refused request: what the handler answers instead of a `data` body.
#[derive(Clone, Debug)]
pub(crate) struct ApiFailure {
    status: StatusCode,
    errors: Vec<ApiError>,
    retry_after_secs: Option<u64>,
}

impl ApiFailure {
    fn one(status: StatusCode, error: ApiError) -> Self {
        Self { status, errors: vec![error], retry_after_secs: None }
    }

    /// 422 with every validation error found in the body.
    pub(crate) fn invalid(errors: Vec<ApiError>) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, errors, retry_after_secs: None }
    }

    /// 401 for a missing or wrong Bearer key (10009).
    pub(crate) fn unauthorized() -> Self {
        let mut error = ApiError::new(
            "10009",
            "Authentication failed",
            "The required authentication headers were either invalid or not included in the request.",
        );
        error.meta = Some(json!({ "url": "https://developers.telnyx.com/docs/overview/errors/10009" }));
        Self::one(StatusCode::UNAUTHORIZED, error)
    }

    /// 400 for a body that is not a JSON object.
    pub(crate) fn unreadable_body() -> Self {
        let error = ApiError::new("10015", "Bad Request", "Invalid characters in the request.");
        Self::one(StatusCode::BAD_REQUEST, error)
    }

    /// 500 as Telnyx sends it (10007).
    pub(crate) fn internal() -> Self {
        let error = ApiError::new("10007", "Internal server error", "Internal server error");
        Self::one(StatusCode::INTERNAL_SERVER_ERROR, error)
    }

    /// 404 for a path that is not part of the simulated API.
    pub(crate) fn not_found() -> Self {
        let error = ApiError::new("10007", "Resource not found", "Resource not found");
        Self::one(StatusCode::NOT_FOUND, error)
    }

    /// The API-wide 429 (10011) with a `Retry-After` header.
    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        let detail = "You have exceeded the maximum number of allowed requests.";
        let error = ApiError::new("10011", "Too many requests", detail);
        Self { retry_after_secs: Some(retry_after_secs), ..Self::one(StatusCode::TOO_MANY_REQUESTS, error) }
    }

    /// The Dial-specific 429 (90103) when too many dials arrive in the rolling window.
    pub(crate) fn too_many_dials(limit: usize, window_secs: u64) -> Self {
        let detail = format!("At most {limit} dials are accepted in any {window_secs} second window.");
        let error = ApiError::new("90103", "Dial rate limit exceeded", detail);
        Self::one(StatusCode::TOO_MANY_REQUESTS, error)
    }

    /// 422 for a command sent to a call that has ended (90018).
    pub(crate) fn call_ended() -> Self {
        let detail = "This call is no longer active and can't receive commands.";
        let error = ApiError::new("90018", "Call has already ended", detail);
        Self::one(StatusCode::UNPROCESSABLE_ENTITY, error)
    }

    /// 422 for a command that needs an answered call (90034).
    pub(crate) fn not_answered() -> Self {
        let detail = "This call can't receive this command because it has not been answered yet.";
        let error = ApiError::new("90034", "Call not answered yet", detail);
        Self::one(StatusCode::UNPROCESSABLE_ENTITY, error)
    }

    /// 422 for a call_control_id the simulator does not know (90015).
    pub(crate) fn unknown_call() -> Self {
        let detail = "The call_control_id provided was not valid.";
        let error = ApiError::new("90015", "Invalid Call Control ID", detail).at("call_control_id");
        Self::one(StatusCode::UNPROCESSABLE_ENTITY, error)
    }

    /// 422 for `answer` on an outgoing leg: only incoming calls can be answered.
    pub(crate) fn not_incoming() -> Self {
        let detail = "Only incoming calls can be answered; this call was created by a Dial.";
        let error = ApiError::new("10015", "Bad Request", detail);
        Self::one(StatusCode::UNPROCESSABLE_ENTITY, error)
    }

    /// The HTTP status this failure is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The response Telnyx would send.
    pub(crate) fn to_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            response
                .insert_header(("Retry-After", secs.to_string()))
                .insert_header(("x-ratelimit-remaining", "0"))
                .insert_header(("x-ratelimit-reset", secs.to_string()));
        }
        response.json(json!({ "errors": self.errors }))
    }
}

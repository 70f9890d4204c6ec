//! Errors as HTTP: the one place errors become responses. Handlers return [`ApiError`]; the
//! [`format_errors`] middleware turns every error response (actix's own 404/405/413/415 too) into
//! `application/problem+json` (RFC 9457) on API and webhook routes, or a friendly HTML page on
//! pages, stamps the request id on it, and logs internal causes under that id — never sends them.

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use serde::Serialize;
use tera::Context;
use tracing::Instrument;

use super::AppState;

use crate::app::calls::{CancelError, ScheduleError};
use crate::app::rules::RuleError;
use crate::domain::ValidationErrors;
use crate::domain::policy::PolicyError;
use crate::store::StoreError;

/// The request id of the current request (also sent as `X-Request-Id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A field-level validation error in a problem document.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemField {
    /// The field's name.
    pub field: String,
    /// JSON pointer to the field in the request body.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request id.
    pub instance: String,
    /// Field errors, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// Every error an API, page or webhook handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Some fields are invalid (422).
    #[error("some fields are invalid")]
    Validation(ValidationErrors),
    /// The body is not what the route reads (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body's media type is wrong (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the route accepts (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body did not arrive within the route's deadline (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// Authentication failed, e.g. a webhook signature (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The API wants its access token (401).
    #[error("this API needs the access token: send `Authorization: Bearer <token>`")]
    MissingToken,
    /// The request is understood but refused by policy, e.g. a destination country (403).
    #[error("{0}")]
    NotAllowed(String, ValidationErrors),
    /// A rate limit was reached (429); `Retry-After` says when to try again.
    #[error("{detail}")]
    TooManyRequests {
        /// Which limit, in words.
        detail: String,
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// As many calls as a limit allows already ring near the requested time (429). No
    /// `Retry-After`: asking again later does not help, another time does.
    #[error("{0}")]
    LimitReached(String),
    /// A form lacks its anti-forgery token, or another site sent the change (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request names a host this service is not (421), e.g. a DNS-rebound name.
    #[error("{0}")]
    MisdirectedRequest(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource's state forbids this (409).
    #[error("{0}")]
    Conflict(String),
    /// A bug or a broken part on our side (500); the cause is logged, not sent.
    #[error("something went wrong on our side; the request id identifies it in our logs")]
    Internal(String),
    /// The store failed (503); the cause is logged, not sent.
    #[error("the database is unavailable; try again shortly")]
    Store(#[from] StoreError),
}

impl ApiError {
    fn kind(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation-error",
            Self::BadRequest(_) => "bad-request",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::RequestTimeout(_) => "request-timeout",
            Self::Unauthorized(_) => "unauthorized",
            Self::MissingToken => "unauthorized",
            Self::NotAllowed(..) => "not-allowed",
            Self::TooManyRequests { .. } => "rate-limited",
            Self::LimitReached(_) => "limit-reached",
            Self::Forbidden(_) => "forbidden",
            Self::MisdirectedRequest(_) => "misdirected-request",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::Internal(_) => "internal",
            Self::Store(_) => "unavailable",
        }
    }

    fn field_errors(&self) -> Vec<ProblemField> {
        let (Self::Validation(errors) | Self::NotAllowed(_, errors)) = self else { return Vec::new() };
        errors
            .0
            .iter()
            .map(|e| ProblemField {
                field: e.field.clone(),
                pointer: format!("/{}", e.field),
                message: e.message.clone(),
            })
            .collect()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::MissingToken => StatusCode::UNAUTHORIZED,
            Self::NotAllowed(..) => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } | Self::LimitReached(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The middleware renders the body; this only carries the status and headers.
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::MissingToken => response.insert_header((header::WWW_AUTHENTICATE, "Bearer")),
            Self::TooManyRequests { retry_after_secs, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()))
            }
            _ => &mut response,
        };
        response.finish()
    }
}

impl From<PolicyError> for ApiError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::CountryNotAllowed { .. } | PolicyError::NumberTypeNotAllowed { .. } => {
                let detail = error.to_string();
                Self::NotAllowed(detail.clone(), ValidationErrors::one("to", detail))
            }
            PolicyError::LimitReached(hit) => Self::LimitReached(hit.to_string()),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(error: ScheduleError) -> Self {
        match error {
            ScheduleError::Invalid(errors) => Self::Validation(errors),
            ScheduleError::KeyReused => Self::Conflict(error.to_string()),
            ScheduleError::Refused(refusal) => refusal.into(),
            ScheduleError::Store(e) => Self::Store(e),
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(error: RuleError) -> Self {
        match error {
            RuleError::Invalid(errors) => Self::Validation(errors),
            RuleError::Refused(refusal) => refusal.into(),
            RuleError::NotFound => Self::NotFound(error.to_string()),
            RuleError::Store(e) => Self::Store(e),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(error: CancelError) -> Self {
        match error {
            CancelError::NotFound => Self::NotFound(error.to_string()),
            CancelError::TooLate(_) => Self::Conflict(error.to_string()),
            CancelError::Store(e) => Self::Store(e),
        }
    }
}

/// Builds the problem document for an error response.
fn problem_for(status: StatusCode, error: Option<&actix_web::Error>, request_id: &str) -> Problem {
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    let ours = error.and_then(|e| e.as_error::<ApiError>());
    let (kind, detail, errors) = match ours {
        Some(e) => (e.kind(), e.to_string(), e.field_errors()),
        None => (default_kind(status), default_detail(status, error), Vec::new()),
    };
    Problem {
        kind: format!("/problems/{kind}"),
        title,
        status: status.as_u16(),
        detail,
        instance: request_id.to_owned(),
        errors,
    }
}

fn default_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        404 => "not-found",
        405 => "method-not-allowed",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        s if s >= 500 => "internal",
        _ => "http-error",
    }
}

fn default_detail(status: StatusCode, error: Option<&actix_web::Error>) -> String {
    match status.as_u16() {
        404 => "there is nothing at this address".into(),
        405 => "this address does not accept this method".into(),
        413 => "the request body is too large".into(),
        s if s >= 500 => "something went wrong on our side; the request id identifies it in our logs".into(),
        // actix's own client errors (bad payloads, headers) describe the request, not us.
        _ => error.map_or_else(|| "the request could not be handled".into(), |e| e.to_string()),
    }
}

/// True for routes whose clients read JSON (the API and the webhook).
fn is_machine_route(path: &str) -> bool {
    path.starts_with("/api") || path.starts_with("/webhook") || matches!(path, "/health" | "/ready" | "/info")
}

/// The error-formatting middleware (see the module docs).
pub async fn format_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let request_id = uuid::Uuid::new_v4().to_string();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.path());
    async move {
        let machine = is_machine_route(req.path());
        let mut res = next.call(req).await?;
        stamp(res.headers_mut(), &request_id);
        let status = res.status();
        if !(status.is_client_error() || status.is_server_error()) || rendered_on_purpose(&res) {
            return Ok(res.map_into_left_body());
        }
        if let Some(error) = res.response().error() {
            log_error(status, error);
        }
        let problem = problem_for(status, res.response().error(), &request_id);
        let body = if machine { problem_json(&problem) } else { error_page(&res, &problem) };
        let (req, old) = res.into_parts();
        let mut new = body;
        copy_headers(old.headers(), new.headers_mut());
        *new.status_mut() = status;
        Ok(ServiceResponse::new(req, new).map_into_right_body())
    }
    .instrument(span)
    .await
}

/// A handler that answered an error status with a body of its own and no error value (the form
/// page re-rendered with its field errors) meant that body; everything else is formatted here.
fn rendered_on_purpose<B: MessageBody>(res: &ServiceResponse<B>) -> bool {
    res.response().error().is_none() && !matches!(res.response().body().size(), BodySize::None | BodySize::Sized(0))
}

fn log_error(status: StatusCode, error: &actix_web::Error) {
    let cause = error.as_error::<ApiError>().map_or_else(|| format!("{error:?}"), |e| format!("{e:?}"));
    if status.is_server_error() {
        tracing::error!(%status, cause, "request failed");
    } else {
        tracing::info!(%status, cause, "request refused");
    }
}

fn stamp(headers: &mut header::HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }
}

/// Keeps the headers a client needs (Allow, Retry-After, X-Request-Id…), not the old body's.
fn copy_headers(from: &header::HeaderMap, to: &mut header::HeaderMap) {
    for (name, value) in from {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            to.insert(name.clone(), value.clone());
        }
    }
}

fn problem_json(problem: &Problem) -> HttpResponse<BoxBody> {
    HttpResponse::build(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/problem+json")
        .json(problem)
}

/// The friendly HTML page for an error on a page route.
fn error_page<B>(res: &ServiceResponse<B>, problem: &Problem) -> HttpResponse {
    let mut context = Context::new();
    context.insert("status", &problem.status);
    context.insert("title", &problem.title);
    context.insert("detail", &problem.detail);
    context.insert("request_id", &problem.instance);
    let html = res
        .request()
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.templates.render("error.html", &context).ok())
        .unwrap_or_else(|| {
            format!(
                "<!doctype html><title>Error</title><p>Error {}. Request id {}.</p>",
                problem.status, problem.instance
            )
        });
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html)
}

//! Webhook intake: read the body within a size bound (and the deadline every body has, see
//! [`super::deadline`]), verify the ED25519 signature over the raw bytes, record the event in the
//! inbox (a duplicate id is acknowledged and dropped), answer 200 at once, and leave the work to
//! a background task. Nothing slow happens before the 200.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::problem::ApiError;
use crate::telnyx::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::telnyx::webhook;

/// Largest webhook body accepted; Telnyx's call events are a few kilobytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Registers the webhook route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhook").route(web::post().to(receive)));
}

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn check_media_type(req: &HttpRequest) -> Result<(), ApiError> {
    let mime = header_text(req, header::CONTENT_TYPE.as_str()).and_then(|v| v.split(';').next()).map(str::trim);
    match mime {
        Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType("webhooks must be sent as application/json".into())),
    }
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!("webhook bodies are limited to {} KiB", BODY_LIMIT / 1024))
}

/// Reads the whole body, refusing one that says or turns out to be over [`BODY_LIMIT`].
async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let declared = header_text(req, header::CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    match payload.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(error)) => Err(ApiError::BadRequest(format!("the body could not be read: {error}"))),
        Err(_) => Err(too_large()),
    }
}

#[tracing::instrument(skip_all)]
async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload).await?;
    if let Some(key) = &state.webhook_key {
        let now = crate::domain::clock::now().timestamp();
        key.verify(header_text(&req, SIGNATURE_HEADER), header_text(&req, TIMESTAMP_HEADER), &body, now)
            .map_err(|e| ApiError::Unauthorized(format!("webhook signature rejected: {e}")))?;
    }
    check_media_type(&req)?;
    let hook = webhook::parse(&body).map_err(|e| ApiError::BadRequest(format!("not a Telnyx webhook: {e}")))?;
    let fresh = state.flow.accept(&hook, body.to_vec()).await?;
    tracing::info!(event_id = %hook.id, event_type = %hook.event_type, duplicate = !fresh, "webhook accepted");
    Ok(HttpResponse::Ok().finish())
}

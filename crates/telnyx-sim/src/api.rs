//! The simulated Telnyx API (`/v2/calls…`): Bearer authentication, injected API faults,
//! Telnyx-style validation and answers, and a journal entry for every request.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::stream;
use serde_json::Value;

use crate::core::Core;
use crate::errors::ApiFailure;
use crate::faults::{ApiFault, ApiFaultKind};
use crate::journal::{JournalEntry, RequestKind, RequestRecord};
use crate::validate::{self, Command};

pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/v2/calls").route(web::post().to(dial)))
        .service(web::resource("/v2/calls/{call_control_id}").route(web::get().to(status)))
        .service(web::resource("/v2/calls/{call_control_id}/actions/{action}").route(web::post().to(command)));
}

async fn dial(core: web::Data<Core>, request: HttpRequest, body: Bytes) -> HttpResponse {
    core.pacing.arrived();
    let core = core.into_inner();
    answer(&core, &request, &body, RequestKind::Dial, |core| {
        let fields = validate::json_object(&body)?;
        core.dial(validate::dial(&fields, core.default_webhook_url.as_deref())?)
    })
    .await
}

async fn command(
    core: web::Data<Core>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let kind = match action.as_str() {
        "speak" => RequestKind::Speak,
        "hangup" => RequestKind::Hangup,
        "answer" => RequestKind::Answer,
        _ => return not_found(core, request, body).await,
    };
    let core = core.into_inner();
    answer(&core, &request, &body, kind, |core| {
        let fields = validate::json_object(&body)?;
        let command = match kind {
            RequestKind::Speak => Command::Speak(validate::speak(&fields)?),
            RequestKind::Answer => Command::Answer(validate::command(&fields)?),
            _ => Command::Hangup(validate::command(&fields)?),
        };
        core.command(&id, command)
    })
    .await
}

async fn status(core: web::Data<Core>, request: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let core = core.into_inner();
    answer(&core, &request, &[], RequestKind::Status, |core| core.status(&path)).await
}

/// Any path outside the simulated API.
pub(crate) async fn not_found(core: web::Data<Core>, request: HttpRequest, body: Bytes) -> HttpResponse {
    let failure = ApiFailure::not_found();
    record(&core, &request, &body, None, Some(failure.status().as_u16()), None);
    failure.to_response()
}

/// Authenticates, applies any API fault, acts, journals, and shapes the answer.
async fn answer(
    core: &Arc<Core>,
    request: &HttpRequest,
    body: &[u8],
    kind: RequestKind,
    act: impl FnOnce(&Arc<Core>) -> Result<Value, ApiFailure>,
) -> HttpResponse {
    let (result, fault) = if authorized(core, request) {
        act_unless_refused(core, kind, act)
    } else {
        (Err(ApiFailure::unauthorized()), None)
    };
    let status = result.as_ref().map_or_else(ApiFailure::status, |_| actix_web::http::StatusCode::OK);
    let fault_kind = fault.as_ref().map(|fault| fault.kind);
    let answered = (fault_kind != Some(ApiFaultKind::Reset)).then_some(status.as_u16());
    record(core, request, body, Some(kind), answered, fault_kind);
    let response = match result {
        Ok(data) => HttpResponse::Ok().json(data),
        Err(failure) => failure.to_response(),
    };
    match fault {
        Some(fault) if fault.kind == ApiFaultKind::Slow => {
            tokio::time::sleep(Duration::from_millis(fault.hold_ms)).await;
            response
        }
        Some(fault) if fault.kind == ApiFaultKind::Reset => dropped_connection(),
        _ => response,
    }
}

/// Faults that refuse the request do so before it is acted on; the others (slow, reset)
/// let it be acted on and spoil only the answer.
fn act_unless_refused(
    core: &Arc<Core>,
    kind: RequestKind,
    act: impl FnOnce(&Arc<Core>) -> Result<Value, ApiFailure>,
) -> (Result<Value, ApiFailure>, Option<ApiFault>) {
    let fault = core.faults.strike(kind);
    let result = match &fault {
        Some(fault) if fault.kind == ApiFaultKind::InternalError => Err(ApiFailure::internal()),
        Some(fault) if fault.kind == ApiFaultKind::RateLimited => Err(ApiFailure::rate_limited(fault.retry_after_secs)),
        _ => act(core),
    };
    (result, fault)
}

fn authorized(core: &Core, request: &HttpRequest) -> bool {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|key| key == core.api_key)
}

/// A response whose body fails before its first byte: actix then closes the connection
/// without writing anything, so the client sees the connection drop with no answer.
fn dropped_connection() -> HttpResponse {
    let failing = stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(io::ErrorKind::ConnectionReset, "injected connection reset"))
    });
    HttpResponse::Ok().streaming(failing)
}

fn record(
    core: &Core,
    request: &HttpRequest,
    body: &[u8],
    kind: Option<RequestKind>,
    status: Option<u16>,
    fault: Option<ApiFaultKind>,
) {
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    core.journal.record(JournalEntry::Request(RequestRecord {
        at: Utc::now(),
        method: request.method().to_string(),
        path: request.path().to_owned(),
        kind,
        body,
        status,
        fault,
    }));
}

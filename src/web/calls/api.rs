//! The JSON API: schedule, list, look up and cancel calls. Bodies are read field by field so a
//! wrong type or an unknown field is reported against its name, like any other invalid value.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::domain::{Call, CallId, CallStatus, HistoryEntry, RuleId, ScheduleInput, ValidationErrors};
use crate::store::ListQuery;
use crate::web::AppState;
use crate::web::problem::ApiError;
use crate::web::requests::{is_json, local_time, path_id, read_fields, rfc3339};

/// The fields a scheduling request may carry.
const FIELDS: [&str; 5] = ["to", "at", "date", "time", "timezone"];
/// Default and largest page sizes of a listing.
const PAGE: (u32, u32) = (50, 200);
/// Longest accepted Idempotency-Key.
const MAX_KEY_LEN: usize = 255;

/// Registers the API routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/calls").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/api/calls/{id}").route(web::get().to(show)).route(web::delete().to(cancel)));
}

/// A call as the API shows it.
#[derive(Debug, Serialize)]
pub struct CallView {
    id: CallId,
    to: String,
    due_at: String,
    timezone: &'static str,
    local_time: String,
    status: CallStatus,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_control_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    joke: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    created_at: String,
    updated_at: String,
    /// The recurring rule the call was made for.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_id: Option<RuleId>,
    /// The rule's occurrence the call stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    occurrence_at: Option<String>,
    /// For a retry: the first call of its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_of: Option<CallId>,
    /// For a retry: which one (1, 2, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<HistoryEntry>>,
}

impl CallView {
    /// The view of a call, with its history when given.
    pub fn new(call: Call, events: Option<Vec<HistoryEntry>>) -> Self {
        Self {
            local_time: local_time(&call),
            id: call.id,
            to: call.to.to_string(),
            due_at: rfc3339(call.due_at.instant()),
            timezone: call.timezone.name(),
            status: call.status,
            attempt: call.attempt,
            call_control_id: call.call_control_id,
            joke: call.joke,
            last_error: call.last_error,
            note: call.note,
            created_at: rfc3339(call.created_at),
            updated_at: rfc3339(call.updated_at),
            rule_id: call.rule,
            occurrence_at: call.occurrence_at.map(rfc3339),
            retry_of: call.retry.map(|(first, _)| first),
            retry: call.retry.map(|(_, number)| number),
            events,
        }
    }
}

/// Reads a scheduling request.
fn read_input(body: &[u8]) -> Result<ScheduleInput, ApiError> {
    let mut fields = read_fields(body, &FIELDS)?;
    Ok(ScheduleInput {
        to: fields.remove("to"),
        at: fields.remove("at"),
        date: fields.remove("date"),
        time: fields.remove("time"),
        timezone: fields.remove("timezone"),
    })
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    let bad = || {
        ApiError::Validation(ValidationErrors::one(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ))
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

#[tracing::instrument(skip_all)]
async fn create(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !is_json(&req) {
        return Err(ApiError::UnsupportedMediaType("send the call as application/json".into()));
    }
    let key = idempotency_key(&req)?;
    let input = read_input(&body)?;
    let scheduled = state.calls.schedule(&input, key.as_deref()).await?;
    let location = format!("/api/calls/{}", scheduled.call.id);
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, location));
    if scheduled.replayed {
        response.insert_header(("idempotent-replayed", "true"));
    }
    Ok(response.json(CallView::new(scheduled.call, None)))
}

/// A page of the listing.
#[derive(Debug, Serialize)]
struct Listing {
    calls: Vec<CallView>,
    limit: u32,
    offset: u32,
    next: Option<String>,
}

fn read_list_query(query: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let invalid = |field: &str, message: &str| ApiError::Validation(ValidationErrors::one(field, message));
    let status = match query.get("status") {
        Some(s) => Some(s.parse::<CallStatus>().map_err(|e| invalid("status", &e.to_string()))?),
        None => None,
    };
    let number = |name: &str, default: u32, max: u32| -> Result<u32, ApiError> {
        let Some(text) = query.get(name) else { return Ok(default) };
        text.parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| invalid(name, &format!("must be a whole number from 0 to {max}")))
    };
    let limit = number("limit", PAGE.0, PAGE.1)?.max(1);
    Ok(ListQuery { status, limit, offset: number("offset", 0, u32::MAX)? })
}

#[tracing::instrument(skip_all)]
async fn list(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = read_list_query(&query)?;
    let calls = state.calls.list(&query).await?;
    let full = calls.len() as u64 == u64::from(query.limit);
    let next = full.then(|| {
        let status = query.status.map(|s| format!("&status={s}")).unwrap_or_default();
        format!("/api/calls?limit={}&offset={}{status}", query.limit, query.offset.saturating_add(query.limit))
    });
    let calls = calls.into_iter().map(|c| CallView::new(c, None)).collect();
    Ok(HttpResponse::Ok().json(Listing { calls, limit: query.limit, offset: query.offset, next }))
}

#[tracing::instrument(skip(state))]
async fn show(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let (call, events) =
        state.calls.get(id).await?.ok_or_else(|| ApiError::NotFound(format!("no call with id `{id}`")))?;
    Ok(HttpResponse::Ok().json(CallView::new(call, Some(events))))
}

#[tracing::instrument(skip(state))]
async fn cancel(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let call = state.calls.cancel(path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(CallView::new(call, None)))
}

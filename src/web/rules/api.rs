//! The JSON API of recurring rules, `/api/schedules`: create, list, look up, pause, resume and
//! delete. Bodies are read like `/api/calls` bodies, so a wrong type or an unknown field is a
//! 422 naming it.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::domain::recurrence::day_name;
use crate::domain::rule_input::{FIELDS, RuleInput};
use crate::domain::{CallId, DueAt};
use crate::domain::{CatchUp, Kind, Rule, RuleId, RuleStatus};
use crate::web::AppState;
use crate::web::problem::ApiError;
use crate::web::requests::{is_json, read_fields, rfc3339, rule_path_id};

/// Registers the rules API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/schedules").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/api/schedules/{id}").route(web::get().to(show)).route(web::delete().to(delete)))
        .service(web::resource("/api/schedules/{id}/pause").route(web::post().to(pause)))
        .service(web::resource("/api/schedules/{id}/resume").route(web::post().to(resume)));
}

/// A rule's waiting call as the API and the page show it.
#[derive(Debug, Serialize)]
pub struct NextCallView {
    id: CallId,
    due_at: String,
    local_time: String,
}

/// A rule as the API and the page show it.
#[derive(Debug, Serialize)]
pub struct RuleView {
    id: RuleId,
    to: String,
    timezone: &'static str,
    repeat: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<&'static str>,
    /// The cron expression the rule follows (the equivalent one for daily and weekly rules).
    cron: String,
    description: String,
    catch_up: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    catch_up_minutes: Option<i64>,
    status: RuleStatus,
    next_call: Option<NextCallView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&Rule> for RuleView {
    fn from(rule: &Rule) -> Self {
        let zone = rule.timezone.tz();
        let (repeat, time, day, cron) = match rule.recurrence.kind() {
            Kind::Daily(time) => ("daily", Some(*time), None, rule.recurrence.pattern()),
            Kind::Weekly(day, time) => ("weekly", Some(*time), Some(day_name(*day)), rule.recurrence.pattern()),
            Kind::Cron(expression) => ("cron", None, None, expression.clone()),
        };
        let (catch_up, catch_up_minutes) = match rule.catch_up {
            CatchUp::Skip => ("skip", None),
            CatchUp::Once { within } => ("once", Some(within.num_minutes())),
        };
        let next_call = rule.next_call.map(|(id, due): (CallId, DueAt)| NextCallView {
            id,
            due_at: rfc3339(due.instant()),
            local_time: due.instant().with_timezone(&zone).format("%a %d %b %Y %H:%M %Z").to_string(),
        });
        Self {
            id: rule.id,
            to: rule.to.to_string(),
            timezone: rule.timezone.name(),
            repeat,
            time: time.map(|t| t.format("%H:%M").to_string()),
            day,
            cron,
            description: format!("{} ({})", rule.recurrence, rule.timezone.name()),
            catch_up,
            catch_up_minutes,
            status: rule.status,
            next_call,
            note: rule.note.clone(),
            created_at: rfc3339(rule.created_at),
            updated_at: rfc3339(rule.updated_at),
        }
    }
}

fn read_input(body: &[u8]) -> Result<RuleInput, ApiError> {
    let mut fields = read_fields(body, &FIELDS)?;
    let mut take = |name: &str| fields.remove(name);
    Ok(RuleInput {
        to: take("to"),
        timezone: take("timezone"),
        repeat: take("repeat"),
        time: take("time"),
        day: take("day"),
        cron: take("cron"),
        catch_up: take("catch_up"),
        catch_up_minutes: take("catch_up_minutes"),
    })
}

#[tracing::instrument(skip_all)]
async fn create(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !is_json(&req) {
        return Err(ApiError::UnsupportedMediaType("send the rule as application/json".into()));
    }
    let rule = state.rules.create(&read_input(&body)?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/schedules/{}", rule.id)))
        .json(RuleView::from(&rule)))
}

/// Every rule.
#[derive(Debug, Serialize)]
struct Listing {
    schedules: Vec<RuleView>,
}

#[tracing::instrument(skip_all)]
async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rules = state.rules.list().await?;
    Ok(HttpResponse::Ok().json(Listing { schedules: rules.iter().map(RuleView::from).collect() }))
}

#[tracing::instrument(skip(state))]
async fn show(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rule = state.rules.get(rule_path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(RuleView::from(&rule)))
}

#[tracing::instrument(skip(state))]
async fn pause(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rule = state.rules.pause(rule_path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(RuleView::from(&rule)))
}

#[tracing::instrument(skip(state))]
async fn resume(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rule = state.rules.resume(rule_path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(RuleView::from(&rule)))
}

#[tracing::instrument(skip(state))]
async fn delete(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.rules.delete(rule_path_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

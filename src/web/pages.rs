//! The pages (tera templates embedded in the binary, so it runs from any directory and needs no
//! network): the schedule form with the lists of calls and the outcome chart, a call's timeline,
//! cancelling, and the friendly error page. Everything works without JavaScript; the script only
//! fills in defaults and keeps the page live (see [`super::live`]).

use std::collections::HashMap;

use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Weekday;
use chrono_tz::Tz;
use serde::Serialize;
use tera::{Context, Tera};

use super::AppState;
use super::api::{local_time, path_id};
use super::auth;
use super::chart::{self, Chart};
use super::csrf::Token;
use super::problem::{ApiError, Problem};
use super::rule_pages;
use super::schedules::RuleView;
use super::timeline;
use crate::calls::hours::CallingHours;
use crate::calls::service::ScheduleError;
use crate::calls::{Call, ScheduleInput};
use crate::rules::input::RuleInput;
use crate::rules::recurrence::{day_name, long_day_name};
use crate::store::ListQuery;

/// The cookie in which the page's script keeps the browser's time zone, so days on the chart
/// are the viewer's days.
const ZONE_COOKIE: &str = "dialajoke_tz";
/// How many calls the page lists.
const SHOWN: u32 = 100;

/// Registers the page routes and the static files.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(index)).route(web::post().to(schedule)))
        .service(web::resource("/calls/{id}").route(web::get().to(detail)))
        .service(web::resource("/calls/{id}/cancel").route(web::post().to(cancel)))
        .route(
            "/static/app.css",
            web::get().to(|| async { asset("text/css; charset=utf-8", include_str!("../../static/app.css")) }),
        )
        .route(
            "/static/app.js",
            web::get().to(|| async { asset("text/javascript; charset=utf-8", include_str!("../../static/app.js")) }),
        );
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

/// Loads the embedded templates.
pub fn templates() -> Result<Tera, tera::Error> {
    let mut tera = Tera::default();
    tera.add_raw_templates([
        ("base.html", include_str!("../../templates/base.html")),
        ("macros.html", include_str!("../../templates/macros.html")),
        ("index.html", include_str!("../../templates/index.html")),
        ("call.html", include_str!("../../templates/call.html")),
        ("row.html", include_str!("../../templates/row.html")),
        ("chart.html", include_str!("../../templates/chart.html")),
        ("error.html", include_str!("../../templates/error.html")),
        ("login.html", include_str!("../../templates/login.html")),
    ])?;
    Ok(tera)
}

/// A call as the pages show it.
#[derive(Debug, Serialize)]
pub struct Row {
    id: String,
    to: String,
    local_time: String,
    timezone: &'static str,
    due_at: String,
    status: &'static str,
    cancellable: bool,
    terminal: bool,
    joke: Option<String>,
    last_error: Option<String>,
    note: Option<String>,
    rule: Option<String>,
}

impl From<&Call> for Row {
    fn from(call: &Call) -> Self {
        Self {
            id: call.id.to_string(),
            to: call.to.to_string(),
            local_time: local_time(call),
            timezone: call.timezone.name(),
            due_at: call.due_at.instant().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            status: call.status.as_str(),
            cancellable: call.status.is_cancellable(),
            terminal: call.status.is_terminal(),
            joke: call.joke.clone(),
            last_error: call.last_error.clone(),
            note: call.note.clone(),
            rule: call.rule.map(|id| id.to_string()),
        }
    }
}

/// The viewer's time zone as the page's script recorded it; UTC until it has.
pub fn viewer_zone(req: &HttpRequest) -> Tz {
    req.cookie(ZONE_COOKIE).and_then(|cookie| cookie.value().parse().ok()).unwrap_or(Tz::UTC)
}

/// Renders one of the templates.
pub fn render(state: &AppState, template: &str, context: &Context) -> Result<String, ApiError> {
    state.templates.render(template, context).map_err(|e| ApiError::Internal(format!("{template}: {e:?}")))
}

/// The outcome chart of the last days, days counted in `zone`.
pub async fn outcome_chart(state: &AppState, zone: Tz) -> Result<Chart, ApiError> {
    Ok(Chart::new(&state.calls.daily_outcomes(zone, chart::DAYS).await?, zone))
}

/// An HTML page, setting the anti-forgery cookie when the browser lacks it.
fn html(status: StatusCode, token: &Token, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    token.set_cookie_on(&mut response);
    response.content_type("text/html; charset=utf-8").body(body)
}

/// What the schedule page shows besides the calls and rules: the forms as typed, their errors, a
/// message.
pub(super) struct FormState<'a> {
    /// The call form as typed.
    pub form: &'a ScheduleInput,
    /// Its errors by field.
    pub errors: HashMap<String, String>,
    /// The recurring-call form as typed.
    pub rule_form: &'a RuleInput,
    /// Its errors by field.
    pub rule_errors: HashMap<String, String>,
    /// A message after a call form's redirect.
    pub flash: Option<String>,
    /// A message after a recurring-call form's redirect.
    pub rule_flash: Option<String>,
}

impl<'a> FormState<'a> {
    /// Both forms empty, with no message.
    pub fn blank() -> Self {
        static EMPTY_CALL: ScheduleInput = ScheduleInput { to: None, at: None, date: None, time: None, timezone: None };
        static EMPTY_RULE: RuleInput = RuleInput {
            to: None,
            timezone: None,
            repeat: None,
            time: None,
            day: None,
            cron: None,
            catch_up: None,
            catch_up_minutes: None,
        };
        Self {
            form: &EMPTY_CALL,
            errors: HashMap::new(),
            rule_form: &EMPTY_RULE,
            rule_errors: HashMap::new(),
            flash: None,
            rule_flash: None,
        }
    }
}

/// Renders the schedule page.
pub(super) async fn render_index(
    req: &HttpRequest,
    state: &AppState,
    page: FormState<'_>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let calls = state.calls.list(&ListQuery { status: None, limit: SHOWN, offset: 0 }).await?;
    let (mut upcoming, recent): (Vec<&Call>, Vec<&Call>) = calls.iter().partition(|c| !c.status.is_terminal());
    // What happens next comes first; the history below stays newest first.
    upcoming.sort_by_key(|c| c.due_at);
    let token = state.forms.token_for(req);
    let mut context = Context::new();
    let form = page.form;
    context.insert(
        "form",
        &serde_json::json!({ "to": form.to, "date": form.date, "time": form.time, "timezone": form.timezone }),
    );
    context.insert("errors", &page.errors);
    context.insert("rule_form", &page.rule_form);
    context.insert("rule_errors", &page.rule_errors);
    context.insert("rules", &state.rules.list().await?.iter().map(RuleView::from).collect::<Vec<_>>());
    context.insert("choices", &rule_choices());
    let hours = state.rules.calling_hours();
    context.insert("calling_hours", &(hours != CallingHours::Always).then(|| hours.to_string()));
    context.insert("flash", &page.flash);
    context.insert("rule_flash", &page.rule_flash);
    context.insert("upcoming", &upcoming.into_iter().map(Row::from).collect::<Vec<_>>());
    context.insert("recent", &recent.into_iter().map(Row::from).collect::<Vec<_>>());
    context.insert("chart", &outcome_chart(state, viewer_zone(req)).await?);
    context.insert("timezones", &state.zone_names);
    context.insert("csrf_token", token.value());
    context.insert("signed_in", &auth::is_signed_in(req));
    Ok(html(status, &token, render(state, "index.html", &context)?))
}

/// The options of the recurring-call form's choices.
fn rule_choices() -> serde_json::Value {
    let days = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    serde_json::json!({
        "repeat": [
            { "value": "daily", "label": "Every day" },
            { "value": "weekly", "label": "Every week" },
            { "value": "cron", "label": "Cron expression" },
        ],
        "day": days.map(|day| serde_json::json!({ "value": day_name(day), "label": long_day_name(day) })),
        "catch_up": [
            { "value": "once", "label": "Make up the latest missed call" },
            { "value": "skip", "label": "Skip missed calls" },
        ],
    })
}

#[tracing::instrument(skip_all)]
async fn index(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = FormState {
        flash: flash_for(&query, &state).await?,
        rule_flash: rule_pages::flash_for(&query, &state).await?,
        ..FormState::blank()
    };
    render_index(&req, &state, page, StatusCode::OK).await
}

/// The message shown after a redirect, read back from the call it is about.
async fn flash_for(query: &HashMap<String, String>, state: &AppState) -> Result<Option<String>, ApiError> {
    let found = ["scheduled", "cancelled"].into_iter().find_map(|verb| query.get(verb).map(|raw| (verb, raw)));
    let Some((verb, raw)) = found else { return Ok(None) };
    let Ok(id) = raw.parse() else { return Ok(None) };
    let Some((call, _)) = state.calls.get(id).await? else { return Ok(None) };
    let mut message = format!("Call to {} {verb} for {}.", call.to, local_time(&call));
    if let Some(note) = &call.note {
        message = format!("{message} Note: {note}.");
    }
    Ok(Some(message))
}

#[tracing::instrument(skip_all)]
async fn schedule(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.forms.check(&req, &form)?;
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned());
    let input = ScheduleInput {
        to: field("to"),
        at: None,
        date: field("date"),
        time: field("time"),
        timezone: field("timezone"),
    };
    match state.calls.schedule(&input, None).await {
        Ok(scheduled) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/?scheduled={}", scheduled.call.id)))
            .finish()),
        Err(ScheduleError::Invalid(errors)) => {
            let errors = errors.0.into_iter().map(|e| (e.field, e.message)).collect();
            let page = FormState { form: &input, errors, ..FormState::blank() };
            render_index(&req, &state, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip(req, state))]
async fn detail(req: HttpRequest, id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let (call, history) =
        state.calls.get(id).await?.ok_or_else(|| ApiError::NotFound(format!("no call with id `{id}`")))?;
    let token = state.forms.token_for(&req);
    let mut context = Context::new();
    context.insert("call", &Row::from(&call));
    context.insert("steps", &timeline::steps(&call, &history));
    context.insert("csrf_token", token.value());
    context.insert("signed_in", &auth::is_signed_in(&req));
    Ok(html(StatusCode::OK, &token, render(&state, "call.html", &context)?))
}

#[tracing::instrument(skip_all)]
async fn cancel(
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.forms.check(&req, &form)?;
    let call = state.calls.cancel(path_id(&id)?).await?;
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/?cancelled={}", call.id))).finish())
}

/// The friendly HTML page for an error on a page route.
pub fn error_page<B>(res: &ServiceResponse<B>, problem: &Problem) -> HttpResponse {
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

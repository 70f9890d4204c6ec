//! The schedule page, which both forms live on: the call form and the recurring-call form with
//! what was typed and its errors, the upcoming and recent calls, the rules, the outcome chart,
//! and the message after a form's redirect.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Weekday;
use chrono_tz::Tz;
use serde::Serialize;
use tera::Context;

use super::AppState;
use super::auth;
use super::chart::{self, Chart};
use super::problem::ApiError;
use super::requests::local_time;
use super::rules::api::RuleView;
use super::templates::{html, render, viewer_zone};
use crate::app::rules::RuleError;
use crate::domain::hours::CallingHours;
use crate::domain::recurrence::{day_name, long_day_name};
use crate::domain::rule_input::RuleInput;
use crate::domain::{Call, ScheduleInput};
use crate::store::ListQuery;

/// How many calls the page lists.
const SHOWN: u32 = 100;

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

/// The outcome chart of the last days, days counted in `zone`.
pub async fn outcome_chart(state: &AppState, zone: Tz) -> Result<Chart, ApiError> {
    Ok(Chart::new(&state.calls.daily_outcomes(zone, chart::DAYS).await?, zone))
}

/// What the schedule page shows besides the calls and rules: the forms as typed, their errors, a
/// message.
pub struct FormState<'a> {
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
pub async fn render_index(
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
pub async fn index(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = FormState {
        flash: flash_for(&query, &state).await?,
        rule_flash: rule_flash_for(&query, &state).await?,
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

/// The message shown after a rule form's redirect.
async fn rule_flash_for(query: &HashMap<String, String>, state: &AppState) -> Result<Option<String>, ApiError> {
    if query.contains_key("rule_deleted") {
        return Ok(Some("Recurring call deleted; the calls it made stay in the history.".into()));
    }
    let found = [("rule_created", "created"), ("rule_paused", "paused"), ("rule_resumed", "resumed")]
        .into_iter()
        .find_map(|(key, verb)| query.get(key).map(|raw| (verb, raw)));
    let Some((verb, raw)) = found else { return Ok(None) };
    let Ok(id) = raw.parse() else { return Ok(None) };
    let rule = match state.rules.get(id).await {
        Ok(rule) => rule,
        Err(RuleError::NotFound) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let mut message = format!("Recurring call to {} {verb}: {} ({}).", rule.to, rule.recurrence, rule.timezone.name());
    if let Some((_, due)) = rule.next_call {
        let local = due.instant().with_timezone(&rule.timezone.tz()).format("%a %d %b %Y %H:%M %Z");
        message = format!("{message} Next call: {local}.");
    }
    Ok(Some(message))
}

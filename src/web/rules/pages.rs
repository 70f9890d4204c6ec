//! The page's recurring calls: the form that creates a rule (daily, weekly or a cron expression)
//! and the buttons that pause, resume and delete one. Like the call form, every form carries the
//! anti-forgery token, posts and redirects, and shows its errors beside their fields.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::rules::RuleError;
use crate::domain::rule_input::RuleInput;
use crate::web::AppState;
use crate::web::home::{FormState, render_index};
use crate::web::problem::ApiError;
use crate::web::requests::rule_path_id;

/// Registers the rule forms' routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/schedules").route(web::post().to(create)))
        .service(web::resource("/schedules/{id}/{action}").route(web::post().to(act)));
}

#[tracing::instrument(skip_all)]
async fn create(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.forms.check(&req, &form)?;
    let field = |name: &str| form.get(name).map(|v| v.trim().to_owned());
    let input = RuleInput {
        to: field("to"),
        timezone: field("timezone"),
        repeat: field("repeat"),
        time: field("time"),
        day: field("day"),
        cron: field("cron"),
        catch_up: field("catch_up"),
        catch_up_minutes: field("catch_up_minutes"),
    };
    match state.rules.create(&input).await {
        Ok(rule) => Ok(see_other(&format!("/?rule_created={}", rule.id))),
        Err(RuleError::Invalid(errors)) => {
            let rule_errors = errors.0.into_iter().map(|e| (e.field, e.message)).collect();
            let page = FormState { rule_form: &input, rule_errors, ..FormState::blank() };
            render_index(&req, &state, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(other) => Err(other.into()),
    }
}

#[tracing::instrument(skip_all)]
async fn act(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.forms.check(&req, &form)?;
    let (raw, action) = path.into_inner();
    let id = rule_path_id(&raw)?;
    let location = match action.as_str() {
        "pause" => format!("/?rule_paused={}", state.rules.pause(id).await?.id),
        "resume" => format!("/?rule_resumed={}", state.rules.resume(id).await?.id),
        "delete" => {
            state.rules.delete(id).await?;
            "/?rule_deleted=1".to_owned()
        }
        _ => return Err(ApiError::NotFound("there is nothing at this address".into())),
    };
    Ok(see_other(&location))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}

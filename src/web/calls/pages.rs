//! The page's calls: the call form (posted to `/`), a call's timeline, and its cancel button.
//! Every form carries the anti-forgery token, posts and redirects, and shows its errors beside
//! their fields on the schedule page.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;

use crate::app::calls::ScheduleError;
use crate::domain::ScheduleInput;
use crate::web::AppState;
use crate::web::home::{self, FormState, Row, render_index};
use crate::web::problem::ApiError;
use crate::web::requests::path_id;
use crate::web::templates::{html, render};
use crate::web::{auth, timeline};

/// Registers the schedule page and the call pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(home::index)).route(web::post().to(schedule)))
        .service(web::resource("/calls/{id}").route(web::get().to(detail)))
        .service(web::resource("/calls/{id}/cancel").route(web::post().to(cancel)));
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

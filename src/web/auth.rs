//! Access control, when `DIALAJOKE_API_TOKEN` is set (an open endpoint that places calls is a
//! toll-fraud magnet): the API wants `Authorization: Bearer <token>` or the page's session
//! cookie; the page wants the session cookie and sends people to `/login` for it. The webhook
//! (signed), health checks and static files stay open.

use std::collections::HashMap;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tera::Context;

use super::AppState;
use super::csrf::{self, Token};
use super::problem::ApiError;
use crate::config::Secret;

const SESSION_COOKIE: &str = "dialajoke_session";

/// The configured access token, if any.
#[derive(Debug, Clone)]
pub struct Access {
    token: Option<Secret>,
}

impl Access {
    /// Access control with `token`, or none at all.
    pub fn new(token: Option<Secret>) -> Self {
        Self { token }
    }
}

/// The session cookie's value: derived from the token, so it survives restarts, is the same on
/// every instance, and changes when the token does, without revealing it.
fn session_value(token: &Secret) -> String {
    let digest = Sha256::digest(format!("dialajoke-session:{}", token.expose()).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

fn has_session(req: &HttpRequest, token: &Secret) -> bool {
    req.cookie(SESSION_COOKIE).is_some_and(|c| matches(&session_value(token), c.value()))
}

fn has_bearer(req: &HttpRequest, token: &Secret) -> bool {
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    given.and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|given| matches(token.expose(), given.trim()))
}

fn is_open(path: &str) -> bool {
    matches!(path, "/login" | "/webhook" | "/health" | "/ready" | "/info") || path.starts_with("/static/")
}

/// The access middleware (see the module docs).
pub async fn require_access(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let access = req.app_data::<web::Data<AppState>>().map(|state| state.access.clone());
    let Some(token) = access.and_then(|a| a.token) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let path = req.path().to_owned();
    if is_open(&path) || has_session(req.request(), &token) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if path.starts_with("/api") {
        if has_bearer(req.request(), &token) {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        return Ok(req.error_response(ApiError::MissingToken).map_into_right_body());
    }
    let to_login = HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).finish();
    Ok(req.into_response(to_login).map_into_boxed_body().map_into_right_body())
}

fn render_login(req: &HttpRequest, state: &AppState, error: Option<&str>) -> Result<HttpResponse, ApiError> {
    let token = Token::for_request(req);
    let mut context = Context::new();
    context.insert("csrf_token", token.value());
    context.insert("error", &error);
    let html = state.templates.render("login.html", &context).map_err(|e| ApiError::Internal(format!("{e:?}")))?;
    let status =
        if error.is_some() { actix_web::http::StatusCode::UNAUTHORIZED } else { actix_web::http::StatusCode::OK };
    let mut response = HttpResponse::build(status);
    token.set_cookie_on(&mut response);
    Ok(response.content_type("text/html; charset=utf-8").body(html))
}

async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    render_login(&req, &state, None)
}

async fn login(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    csrf::check(&req, &form)?;
    let Some(token) = &state.access.token else {
        return Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/")).finish());
    };
    let given = form.get("token").map(|t| t.trim()).unwrap_or_default();
    if !matches(token.expose(), given) {
        tracing::warn!("a sign-in with a wrong access token was refused");
        return render_login(&req, &state, Some("That is not the access token. Check it and try again."));
    }
    let cookie = Cookie::build(SESSION_COOKIE, session_value(token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .finish();
    Ok(HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/")).finish())
}

/// Registers `/login`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login_page)).route(web::post().to(login)));
}

//! Access control, when `DIALAJOKE_API_TOKEN` is set (an open endpoint that places calls is a
//! toll-fraud magnet): the API wants `Authorization: Bearer <token>` or the page's session
//! cookie; the page wants a session and sends people to `/login` for one. Signing in is
//! throttled (see [`super::throttle`]); a session lasts the configured time and ends at
//! `/logout`. Sessions are kept in the database by a hash of their cookie keyed with the token,
//! so every instance agrees on them, a signed-out cookie is worthless even to whoever kept a
//! copy, and changing the token ends them all. The webhook (signed), health checks, sign-in and
//! static files stay open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use tera::Context;

use super::AppState;
use super::mac;
use super::problem::ApiError;
use super::throttle::SignInThrottle;
use crate::config::Secret;
use crate::store::{Sessions, StoreError};

const SESSION_COOKIE: &str = "dialajoke_session";
/// Random bytes in a session cookie.
const SESSION_BYTES: usize = 32;

/// Who may use the page and the API, and how their sessions are kept.
pub struct Access {
    token: Option<Secret>,
    sessions: Arc<dyn Sessions>,
    /// How long a session lasts.
    lifetime: Duration,
    /// Whether the session cookie carries `Secure` (from configuration).
    secure: bool,
    throttle: SignInThrottle,
}

impl Access {
    /// Access control with `token` (none at all without one), sessions kept in `sessions` for
    /// `lifetime`, cookies `secure` or not.
    pub fn new(token: Option<Secret>, sessions: Arc<dyn Sessions>, lifetime: Duration, secure: bool) -> Self {
        Self { token, sessions, lifetime, secure, throttle: SignInThrottle::default() }
    }
}

/// Marks a request that carries a live session; set by [`require_access`].
#[derive(Debug, Clone)]
pub struct SignedIn(String);

impl SignedIn {
    /// The session's key as stored.
    pub fn key(&self) -> &str {
        &self.0
    }
}

/// True when the request carries a live session (so the page shows its sign-out button).
pub fn is_signed_in(req: &HttpRequest) -> bool {
    req.extensions().contains::<SignedIn>()
}

/// The stored key of a session cookie: keyed with the token, so the table alone lets no one in.
fn session_key(token: &Secret, cookie: &str) -> String {
    mac::hex(&mac::tag(token.expose().as_bytes(), &[b"dialajoke-session", cookie.as_bytes()]))
}

async fn session_of(access: &Access, token: &Secret, req: &HttpRequest) -> Result<Option<SignedIn>, StoreError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else { return Ok(None) };
    let key = session_key(token, cookie.value());
    Ok(access.sessions.session_active(&key).await?.then_some(SignedIn(key)))
}

fn has_bearer(req: &HttpRequest, token: &Secret) -> bool {
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    given.and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|given| mac::same(token.expose(), given.trim()))
}

fn is_open(path: &str) -> bool {
    matches!(path, "/login" | "/webhook" | "/health" | "/ready" | "/info") || path.starts_with("/static/")
}

/// The access middleware (see the module docs).
pub async fn require_access(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(token) = &state.access.token else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    match session_of(&state.access, token, req.request()).await {
        Ok(Some(signed_in)) => {
            req.extensions_mut().insert(signed_in);
            return Ok(next.call(req).await?.map_into_left_body());
        }
        Ok(None) => {}
        Err(error) => return Ok(req.error_response(ApiError::Store(error)).map_into_right_body()),
    }
    let path = req.path().to_owned();
    if is_open(&path) || (path.starts_with("/api") && has_bearer(req.request(), token)) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if path.starts_with("/api") {
        return Ok(req.error_response(ApiError::MissingToken).map_into_right_body());
    }
    let to_login = HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).finish();
    Ok(req.into_response(to_login).map_into_boxed_body().map_into_right_body())
}

fn render_login(req: &HttpRequest, state: &AppState, error: Option<&str>) -> Result<HttpResponse, ApiError> {
    let token = state.forms.token_for(req);
    let mut context = Context::new();
    context.insert("csrf_token", token.value());
    context.insert("error", &error);
    let html = state.templates.render("login.html", &context).map_err(|e| ApiError::Internal(format!("{e:?}")))?;
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    let mut response = HttpResponse::build(status);
    token.set_cookie_on(&mut response);
    Ok(response.content_type("text/html; charset=utf-8").body(html))
}

async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    render_login(&req, &state, None)
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, location.to_owned()));
    response
}

fn session_cookie(access: &Access, value: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(access.secure)
        .max_age(actix_web::cookie::time::Duration::seconds(access.lifetime.as_secs().try_into().unwrap_or(i64::MAX)))
        .finish()
}

async fn login(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let access = &state.access;
    let Some(token) = &access.token else { return Ok(see_other("/").finish()) };
    access.throttle.admit(req.peer_addr().map(|peer| peer.ip()))?;
    state.forms.check(&req, &form)?;
    let given = form.get("token").map(|t| t.trim()).unwrap_or_default();
    if !mac::same(token.expose(), given) {
        tracing::warn!("a sign-in with a wrong access token was refused");
        return render_login(&req, &state, Some("That is not the access token. Check it and try again."));
    }
    let cookie = mac::hex(&mac::random_bytes(SESSION_BYTES));
    access.sessions.start_session(&session_key(token, &cookie), access.lifetime).await?;
    Ok(see_other("/").cookie(session_cookie(access, cookie)).finish())
}

async fn logout(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.forms.check(&req, &form)?;
    let signed_in = req.extensions().get::<SignedIn>().cloned();
    if let Some(session) = signed_in {
        state.access.sessions.end_session(session.key()).await?;
    }
    let mut gone = session_cookie(&state.access, String::new());
    gone.make_removal();
    let next = if state.access.token.is_some() { "/login" } else { "/" };
    Ok(see_other(next).cookie(gone).finish())
}

/// Registers `/login` and `/logout`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login_page)).route(web::post().to(login)))
        .service(web::resource("/logout").route(web::post().to(logout)));
}

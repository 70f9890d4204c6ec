//! The pages' rendering kit: the templates embedded in the binary, the static files, one page
//! answer that sets the anti-forgery cookie, and the viewer's time zone.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono_tz::Tz;
use tera::{Context, Tera};

use super::AppState;
use super::csrf::Token;
use super::problem::ApiError;

/// The cookie in which the page's script keeps the browser's time zone, so days on the chart
/// are the viewer's days.
const ZONE_COOKIE: &str = "dialajoke_tz";
/// Registers the static files.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
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
pub fn load() -> Result<Tera, tera::Error> {
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

/// The viewer's time zone as the page's script recorded it; UTC until it has.
pub fn viewer_zone(req: &HttpRequest) -> Tz {
    req.cookie(ZONE_COOKIE).and_then(|cookie| cookie.value().parse().ok()).unwrap_or(Tz::UTC)
}

/// Renders one of the templates.
pub fn render(state: &AppState, template: &str, context: &Context) -> Result<String, ApiError> {
    state.templates.render(template, context).map_err(|e| ApiError::Internal(format!("{template}: {e:?}")))
}

/// An HTML page, setting the anti-forgery cookie when the browser lacks it.
pub fn html(status: StatusCode, token: &Token, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    token.set_cookie_on(&mut response);
    response.content_type("text/html; charset=utf-8").body(body)
}

//! Health endpoints for load balancers and people: alive, ready (the store answers), and info.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use super::problem::ApiError;

/// Registers `/health`, `/ready` and `/info`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/info", web::get().to(info));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.calls.ready().await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

/// `url` without the credentials a URL can carry (user, password, query, fragment), for showing.
pub fn without_credentials(url: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(url) else { return "(not a URL)".into() };
    // Clearing the user and password only fails for URLs that cannot have them.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().trim_end_matches('/').to_owned()
}

async fn info(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": state.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "uptime_secs": (chrono::Utc::now() - state.started_at).num_seconds(),
        "telnyx_api_base": state.api_base,
    }))
}

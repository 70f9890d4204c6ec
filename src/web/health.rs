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

async fn info(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": state.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "uptime_secs": (chrono::Utc::now() - state.started_at).num_seconds(),
        "telnyx_api_base": state.api_base,
    }))
}

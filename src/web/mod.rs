//! The HTTP face of the service: the pages and their live updates, the JSON API of calls and of
//! recurring rules, webhook intake and health checks, all behind the error-formatting
//! middleware, the security headers, the Host allow-list, CORS, the body deadline, the
//! cross-site check and the access check, in that order from the outside in.

pub mod auth;
pub mod calls;
pub mod chart;
pub mod csrf;
pub mod deadline;
pub mod health;
pub mod home;
pub mod hosts;
pub mod live;
mod mac;
pub mod origin;
pub mod problem;
pub mod requests;
pub mod rules;
pub mod templates;
mod throttle;
pub mod timeline;
pub mod webhook;

use actix_cors::Cors;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use chrono::{DateTime, Utc};
use tera::Tera;
use tokio_util::sync::CancellationToken;

use crate::app::calls::CallService;
use crate::app::flow::CallFlow;
use crate::app::rules::RuleService;
use crate::telnyx::signature::PublicKey;

/// What every handler shares.
pub struct AppState {
    /// The calls service.
    pub calls: CallService,
    /// The recurring rules service.
    pub rules: RuleService,
    /// The call flow, which takes webhook events.
    pub flow: CallFlow,
    /// The Telnyx public key; None only when unsigned webhooks are allowed (development).
    pub webhook_key: Option<PublicKey>,
    /// The page templates.
    pub templates: Tera,
    /// IANA zone names for the page's time zone picker.
    pub zone_names: Vec<&'static str>,
    /// When the service started.
    pub started_at: DateTime<Utc>,
    /// The Telnyx API base in use, without any credentials written into it (shown by `/info`).
    pub api_base: String,
    /// Cancelled when the service starts to stop, so streams that never end by themselves (the
    /// pages' live updates) close and do not hold up the graceful shutdown.
    pub closing: CancellationToken,
    /// Who may use the page and the API.
    pub access: auth::Access,
    /// How the forms' anti-forgery tokens are made and checked.
    pub forms: csrf::Forms,
    /// The host names requests may be for.
    pub hosts: hosts::AllowedHosts,
    /// The origins besides a request's own that may change things.
    pub origins: origin::TrustedOrigins,
}

/// Largest API request body.
const API_BODY_LIMIT: usize = 16 * 1024;

/// Registers every route with its shared state.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(web::PayloadConfig::new(API_BODY_LIMIT))
            .app_data(web::FormConfig::default().limit(API_BODY_LIMIT))
            .configure(auth::routes)
            .configure(calls::pages::routes)
            .configure(templates::routes)
            .configure(rules::pages::routes)
            .configure(live::routes)
            .configure(calls::api::routes)
            .configure(rules::api::routes)
            .configure(webhook::routes)
            .configure(health::routes);
    }
}

/// CORS: only the listed origins, none by default.
pub fn cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "POST", "DELETE"])
        .allow_any_header()
        .max_age(600)
}

/// Headers that keep browsers from framing, sniffing or leaking the page.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ))
}

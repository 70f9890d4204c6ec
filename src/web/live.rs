//! Live updates for the pages: `GET /events`, a server-sent event stream. Every time the store
//! reports that a call changed, the stream sends the call's row freshly rendered (`call` event);
//! when a call ends it also sends the redrawn outcome chart (`chart` event). A viewer that fell
//! too far behind gets `resync` and reloads the lists itself. Data flows one way: store → change
//! feed → this stream → the browser.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono_tz::Tz;
use serde::Serialize;
use tera::Context;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Interval, MissedTickBehavior};

use super::AppState;
use super::home::{self, Row};
use super::problem::ApiError;
use super::templates;
use crate::domain::CallId;

/// How long a browser waits before reconnecting a dropped stream.
const RETRY_MS: u32 = 2000;
/// How often an idle stream sends a comment, so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Registers the stream's route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

#[tracing::instrument(skip_all)]
async fn events(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // Rows carry cancel forms, which need the viewer's own anti-forgery token.
    let csrf_token = state.forms.existing(&req).unwrap_or_default();
    let feed = Feed {
        changes: state.calls.changes(),
        state: state.into_inner(),
        zone: templates::viewer_zone(&req),
        csrf_token,
        keep_alive: keep_alive(),
        started: false,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(futures_util::stream::unfold(feed, Feed::next_message))
}

fn keep_alive() -> Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// One viewer's stream.
struct Feed {
    state: Arc<AppState>,
    changes: Receiver<CallId>,
    zone: Tz,
    csrf_token: String,
    keep_alive: Interval,
    started: bool,
}

/// What a `call` event carries.
#[derive(Serialize)]
struct CallMessage {
    id: String,
    terminal: bool,
    due_at: String,
    row: String,
}

impl Feed {
    /// The next chunk of the stream; None ends it (the service is shutting down).
    async fn next_message(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        let text = if self.started {
            tokio::select! {
                () = self.state.closing.cancelled() => return None,
                _ = self.keep_alive.tick() => ": still here\n\n".to_owned(),
                change = self.changes.recv() => match change {
                    Ok(id) => self.call_event(id).await,
                    Err(RecvError::Lagged(_)) => event("resync", "{}"),
                    Err(RecvError::Closed) => return None,
                },
            }
        } else {
            // A (re)connected viewer may have missed changes: the chart comes first, fresh.
            self.started = true;
            format!("retry: {RETRY_MS}\n\n{}", self.chart_event().await)
        };
        // A chunk must never be empty: in a chunked response that would read as the end.
        let text = if text.is_empty() { ":\n\n".to_owned() } else { text };
        Some((Ok(Bytes::from(text)), self))
    }

    async fn call_event(&self, id: CallId) -> String {
        match self.render_call(id).await {
            Ok(Some((message, terminal))) => {
                let chart = if terminal { self.chart_event().await } else { String::new() };
                format!("{}{chart}", event("call", &message))
            }
            Ok(None) => String::new(),
            Err(error) => {
                tracing::warn!(error = ?error, call_id = %id, "could not render a live update");
                String::new()
            }
        }
    }

    /// The call's `call` message as JSON, and whether the call is over.
    async fn render_call(&self, id: CallId) -> Result<Option<(String, bool)>, ApiError> {
        let Some((call, _)) = self.state.calls.get(id).await? else { return Ok(None) };
        let row = Row::from(&call);
        let mut context = Context::new();
        context.insert("call", &row);
        context.insert("csrf_token", &self.csrf_token);
        let message = CallMessage {
            id: id.to_string(),
            terminal: call.status.is_terminal(),
            due_at: call.due_at.instant().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            row: templates::render(&self.state, "row.html", &context)?.trim().to_owned(),
        };
        let json = serde_json::to_string(&message).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Some((json, message.terminal)))
    }

    async fn chart_event(&self) -> String {
        let rendered = async {
            let mut context = Context::new();
            context.insert("chart", &home::outcome_chart(&self.state, self.zone).await?);
            let svg = templates::render(&self.state, "chart.html", &context)?;
            serde_json::to_string(&serde_json::json!({ "html": svg })).map_err(|e| ApiError::Internal(e.to_string()))
        };
        match rendered.await {
            Ok(json) => event("chart", &json),
            Err(error) => {
                tracing::warn!(error = ?error, "could not render the live chart");
                String::new()
            }
        }
    }
}

/// One server-sent event; `data` is a single line (JSON never holds a raw line break).
fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

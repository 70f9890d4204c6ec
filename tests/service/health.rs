//! Health endpoints: alive, ready and info answer JSON with a request id, and info shows no secret.

use crate::common;

use common::{API_KEY, TestApp, spawn_app};
use serde_json::{Value, json};

/// GETs `path`, checks it is a 200 carrying a request id, and returns the raw body.
async fn get_ok(app: &TestApp, path: &str) -> String {
    let response = app.http.get(format!("{}{path}", app.base)).send().await.expect("request sent");
    assert_eq!(response.status(), 200, "{path}");
    let request_id = response.headers().get("x-request-id").expect("an X-Request-Id header");
    assert!(!request_id.is_empty(), "{path}");
    response.text().await.expect("body")
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).expect("JSON body")
}

#[tokio::test]
async fn health_says_ok() {
    let app = spawn_app().await;

    let body = get_ok(&app, "/health").await;

    assert_eq!(json_of(&body), json!({"status": "ok"}));
}

#[tokio::test]
async fn ready_says_ready_when_the_database_answers() {
    let app = spawn_app().await;

    let body = get_ok(&app, "/ready").await;

    assert_eq!(json_of(&body), json!({"status": "ready"}));
}

#[tokio::test]
async fn info_names_the_service_its_version_and_uptime_without_revealing_the_api_key() {
    let app = spawn_app().await;

    let body = get_ok(&app, "/info").await;

    let info = json_of(&body);
    assert_eq!(info["name"], "dialajoke");
    assert!(!info["version"].as_str().expect("version").is_empty());
    assert!(info["uptime_secs"].as_i64().expect("uptime_secs") >= 0);
    assert!(!body.contains(API_KEY), "{body}");
}

#[tokio::test]
async fn each_response_carries_its_own_request_id() {
    let app = spawn_app().await;
    let mut ids = Vec::new();

    for path in ["/health", "/ready", "/info"] {
        let response = app.http.get(format!("{}{path}", app.base)).send().await.expect("request sent");
        ids.push(response.headers()["x-request-id"].to_str().expect("ascii").to_owned());
    }

    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
}

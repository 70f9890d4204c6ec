//! Every error is a problem document (RFC 9457) on API routes and a friendly page on page
//! routes, with the request id as `instance` and `X-Request-Id`, and nothing internal leaks.

use crate::common;

use common::spawn_app;
use serde_json::Value;

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.expect("problem JSON");
    for member in ["type", "title", "detail"] {
        assert!(problem[member].is_string(), "{member} missing in {problem}");
    }
    assert_eq!(problem["status"], status);
    assert_eq!(problem["instance"], request_id.as_str());
    problem
}

#[tokio::test]
async fn an_unknown_api_route_is_a_404_problem() {
    let app = spawn_app().await;
    assert_problem(app.http.get(format!("{}/api/nothing", app.base)).send().await.expect("sent"), 404).await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    assert_problem(app.http.put(format!("{}/api/calls", app.base)).send().await.expect("sent"), 405).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_problem() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(format!("{}/api/calls", app.base))
        .header("content-type", "application/json")
        .body("{\"to\": ")
        .send()
        .await
        .expect("sent");
    assert_problem(response, 400).await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_a_415_problem() {
    let app = spawn_app().await;
    let response = app.http.post(format!("{}/api/calls", app.base)).body("to=+35312345678").send().await.expect("sent");
    assert_problem(response, 415).await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let app = spawn_app().await;
    let huge = format!("{{\"to\": \"{}\"}}", "9".repeat(200_000));
    let response = app
        .http
        .post(format!("{}/api/calls", app.base))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("sent");
    assert_problem(response, 413).await;
}

#[tokio::test]
async fn a_validation_problem_lists_fields_with_pointers() {
    let app = spawn_app().await;
    let response = app.post_call(&serde_json::json!({"to": "nope"})).await;
    let problem = assert_problem(response, 422).await;
    let pointers: Vec<&str> =
        problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert!(pointers.contains(&"/to"), "{problem}");
}

#[tokio::test]
async fn an_unknown_page_is_a_friendly_html_page_with_the_request_id() {
    let app = spawn_app().await;
    let response = app.http.get(format!("{}/no/such/page", app.base)).send().await.expect("sent");
    assert_eq!(response.status(), 404);
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let html = response.text().await.expect("body");
    assert!(html.contains(&request_id));
    assert!(html.contains("href=\"/\""));
}

#[tokio::test]
async fn a_browser_from_an_unlisted_origin_is_refused_by_cors() {
    let app = spawn_app().await;
    let response = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/api/calls", app.base))
        .header("origin", "http://elsewhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_listed_origin_is_allowed_by_cors() {
    let mut options = common::Options::default();
    options.env.push(("DIALAJOKE_CORS_ORIGINS", "http://app.example".to_owned()));
    let app = common::spawn_app_with(options).await;
    let response = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/api/calls", app.base))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://app.example");
}

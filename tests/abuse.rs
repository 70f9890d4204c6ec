//! Abuse protection: an access token for the page and the API when configured, destination
//! countries (by default only the caller id's own), and per-number and global scheduling limits.
//! Every refusal is a clear problem document and stores nothing.

mod common;

use std::time::Duration;

use common::{Options, at_in, spawn_app_with};
use serde_json::{Value, json};

const TOKEN: &str = "correct-horse-battery-staple";
const US: &str = "+1 202 555 0142";
const IRISH: &str = "+353 1 234 5678";
const LATER: Duration = Duration::from_secs(3600);

fn with_env(pairs: &[(&'static str, &str)]) -> Options {
    let mut options = Options::default();
    options.env.extend(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())));
    options
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.expect("problem JSON")
}

#[tokio::test]
async fn with_a_token_configured_the_api_refuses_requests_without_it() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    let body = json!({"to": US, "at": at_in(LATER)});
    let post = |token: Option<&str>| {
        let request = app.http.post(format!("{}/api/calls", app.base)).json(&body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };

    let anonymous = post(None).await.expect("sent");
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    problem(anonymous, 401).await;
    problem(post(Some("guess-guess-guess-guess")).await.expect("sent"), 401).await;
    assert_eq!(app.count_rows("calls").await, 0);

    assert_eq!(post(Some(TOKEN)).await.expect("sent").status(), 201);
}

#[tokio::test]
async fn with_a_token_configured_the_page_asks_to_sign_in_and_then_works() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;

    let page = app.http.get(format!("{}/", app.base)).send().await.expect("sent");
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");

    let login = app.http.get(format!("{}/login", app.base)).send().await.expect("sent");
    let csrf = cookie(&login, "dialajoke_csrf");
    let sign_in = |token: &'static str| {
        app.http
            .post(format!("{}/login", app.base))
            .header("cookie", format!("dialajoke_csrf={csrf}"))
            .form(&[("csrf_token", csrf.as_str()), ("token", token)])
            .send()
    };
    assert_eq!(sign_in("not-the-token-at-all").await.expect("sent").status(), 401);
    let signed_in = sign_in(TOKEN).await.expect("sent");
    assert_eq!(signed_in.status(), 303);
    let session = cookie(&signed_in, "dialajoke_session");
    assert!(!session.contains(TOKEN));

    let page = app
        .http
        .get(format!("{}/", app.base))
        .header("cookie", format!("dialajoke_session={session}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn health_checks_stay_open_when_a_token_is_configured() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    for path in ["/health", "/ready", "/info"] {
        assert_eq!(app.http.get(format!("{}{path}", app.base)).send().await.expect("sent").status(), 200, "{path}");
    }
}

#[test]
fn a_token_too_short_to_be_safe_stops_start_up() {
    let error = dialajoke::config::Config::from_sources(None, |name| match name {
        "TELNYX_API_KEY" | "TELNYX_CONNECTION_ID" => Some("x".into()),
        "TELNYX_PUBLIC_KEY" => Some("cQzLQBy26bKTWRwDFuHlAGPNWrb+pU6soOys9UyvO0k=".into()),
        "TELNYX_FROM_NUMBER" => Some(US.into()),
        "DIALAJOKE_API_TOKEN" => Some("short".into()),
        _ => None,
    })
    .expect_err("too short");
    assert!(error.to_string().contains("DIALAJOKE_API_TOKEN"), "{error}");
}

fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[tokio::test]
async fn by_default_only_the_caller_ids_country_may_be_called() {
    // An empty setting means "not set": the default is the from-number's country (US here).
    let app = spawn_app_with(with_env(&[("DIALAJOKE_ALLOWED_COUNTRIES", "")])).await;

    let refused = problem(app.post_call(&json!({"to": IRISH, "at": at_in(LATER)})).await, 403).await;

    assert_eq!(refused["errors"][0]["field"], "to");
    assert!(refused["detail"].as_str().expect("detail").contains("IE"));
    assert_eq!(app.count_rows("calls").await, 0);
    assert_eq!(app.post_call(&json!({"to": US, "at": at_in(LATER)})).await.status(), 201);
}

#[tokio::test]
async fn a_number_is_not_called_more_often_than_its_hourly_limit() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "2")])).await;
    for _ in 0..2 {
        assert_eq!(app.post_call(&json!({"to": US, "at": at_in(LATER)})).await.status(), 201);
    }

    let third = app.post_call(&json!({"to": US, "at": at_in(LATER)})).await;

    assert_eq!(third.headers()["retry-after"], "3600");
    let refused = problem(third, 429).await;
    assert!(refused["detail"].as_str().expect("detail").contains("to this number"));
    assert_eq!(app.count_rows("calls").await, 2);
    assert_eq!(app.post_call(&json!({"to": IRISH, "at": at_in(LATER)})).await.status(), 201);
}

#[tokio::test]
async fn the_whole_service_stops_scheduling_at_its_daily_limit() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_LIMIT_GLOBAL_DAY", "3")])).await;
    for to in [US, IRISH, "+1 202 555 0143"] {
        assert_eq!(app.post_call(&json!({"to": to, "at": at_in(LATER)})).await.status(), 201);
    }

    let refused = problem(app.post_call(&json!({"to": "+1 202 555 0144", "at": at_in(LATER)})).await, 429).await;

    assert!(refused["detail"].as_str().expect("detail").contains("in all"));
    assert_eq!(app.count_rows("calls").await, 3);
}

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

    // Asking again later changes nothing (the calls still ring then): no Retry-After.
    assert!(third.headers().get("retry-after").is_none());
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

/// A daily rule to `to` at `time` UTC.
fn daily_rule(to: &str, time: &str) -> Value {
    json!({"to": to, "timezone": "UTC", "repeat": "daily", "time": time})
}

/// A UTC wall-clock time a few hours from now, so a rule's first call is today or tomorrow.
fn hours_from_now(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours)).format("%H:%M").to_string()
}

#[tokio::test]
async fn rules_ringing_one_number_at_one_time_are_refused_beyond_its_hourly_limit() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "2")])).await;
    let time = hours_from_now(3);
    for _ in 0..2 {
        assert_eq!(app.post_schedule(&daily_rule(US, &time)).await.status(), 201);
    }

    let third = problem(app.post_schedule(&daily_rule(US, &time)).await, 429).await;

    assert!(third["detail"].as_str().expect("detail").contains("2 calls to this number already ring within an hour"));
    assert_eq!(app.count_rows("schedules").await, 2, "the refused rule is not kept");
    assert_eq!(app.count_rows("calls").await, 2);
    assert_eq!(app.post_schedule(&daily_rule(IRISH, &time)).await.status(), 201);
}

#[tokio::test]
async fn a_one_off_call_is_refused_near_the_calls_of_rules_that_fill_the_hour() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "1")])).await;
    let rule: Value = app.post_schedule(&daily_rule(US, &hours_from_now(3))).await.json().await.expect("rule");
    let first_call = &rule["next_call"]["due_at"];
    let due =
        chrono::DateTime::parse_from_rfc3339(first_call.as_str().expect("the rule's first call")).expect("an instant");

    let near = (due + chrono::Duration::minutes(20)).to_rfc3339();
    let refused = problem(app.post_call(&json!({"to": US, "at": near})).await, 429).await;

    assert!(refused["detail"].as_str().expect("detail").contains("to this number"));
    let far = (due + chrono::Duration::minutes(90)).to_rfc3339();
    assert_eq!(app.post_call(&json!({"to": US, "at": far})).await.status(), 201);
}

#[tokio::test]
async fn fifty_requests_at_once_to_one_number_store_exactly_its_limit() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "10")])).await;
    let body = json!({"to": US, "at": at_in(LATER)});

    let answers = futures_util::future::join_all((0..50).map(|_| app.post_call(&body))).await;

    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 40, "{statuses:?}");
    assert_eq!(app.count_rows("calls").await, 10);
}

#[tokio::test]
async fn a_flood_of_calls_to_many_numbers_stops_exactly_at_the_global_limit() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_LIMIT_GLOBAL_HOUR", "20")])).await;
    let at = at_in(LATER);
    let bodies: Vec<Value> = (0..60).map(|n| json!({"to": format!("+1 202 555 {:04}", 100 + n), "at": at})).collect();

    let answers = futures_util::future::join_all(bodies.iter().map(|body| app.post_call(body))).await;

    let created = answers.iter().filter(|answer| answer.status() == 201).count();
    let refused = answers.iter().filter(|answer| answer.status() == 429).count();
    assert_eq!((created, refused), (20, 40));
    assert_eq!(app.count_rows("calls").await, 20);
}

//! Abuse protection: an access token for the page and the API when configured, with throttled
//! sign-in and sessions that expire and can be ended; destination countries (by default only the
//! caller id's own) and number types; per-number and global limits on calls ringing near one
//! another; rule checks that never hold up other requests; and the web's own defences: a Host
//! allow-list against DNS rebinding, anti-forgery tokens bound to a server secret and the
//! session, no state change from another site, a deadline on every request body, no credentials
//! in `/info`, and CORS and security headers on every answer. Every refusal is a clear problem
//! document (or page) and stores nothing.

use crate::common;

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use common::{
    FLOW_BOUND, Options, TestApp, at_in, post_trickled, spawn_app, spawn_app_with, wait_until, webhook_event,
};
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

/// The whole `Set-Cookie` header that sets cookie `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// The value of cookie `name` as the response sets it.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    let header = set_cookie(response, name);
    header[name.len() + 1..].split(';').next().unwrap_or_default().to_owned()
}

/// The attributes of a `Set-Cookie` header, in lower case.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect()
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

const EVIL: &str = "http://evil.example";
const DASHBOARD: &str = "https://dashboard.example";

fn port_of(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

/// Signs in with the access token through the sign-in form; returns the session cookie's value.
async fn sign_in(app: &TestApp) -> String {
    let signed_in = attempt_sign_in(&app.http, app, TOKEN).await;
    assert_eq!(signed_in.status(), 303);
    cookie(&signed_in, "dialajoke_session")
}

/// One sign-in through the form, as `client`, with the anti-forgery pair the form gives it.
async fn attempt_sign_in(client: &reqwest::Client, app: &TestApp, token: &str) -> reqwest::Response {
    let login = client.get(format!("{}/login", app.base)).send().await.expect("sent");
    let csrf = cookie(&login, "dialajoke_csrf");
    client
        .post(format!("{}/login", app.base))
        .header("cookie", format!("dialajoke_csrf={csrf}"))
        .form(&[("csrf_token", csrf.as_str()), ("token", token)])
        .send()
        .await
        .expect("sent")
}

/// The (unescaped enough) value of the page's first hidden anti-forgery field.
fn form_token(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("a token field") + "name=\"csrf_token\" value=\"".len();
    html[at..at + html[at..].find('"').expect("value ends")].to_owned()
}

/// What the page gives a browser holding `cookies`: its anti-forgery cookie (or the one the
/// browser keeps) and the token its forms carry, and the page itself.
async fn page_pair(app: &TestApp, cookies: &str, kept: Option<&str>) -> (String, String, String) {
    let page = app.http.get(format!("{}/", app.base)).header("cookie", cookies).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    let fresh = page.headers().get_all("set-cookie").iter().any(|v| v.as_bytes().starts_with(b"dialajoke_csrf="));
    let csrf = if fresh { cookie(&page, "dialajoke_csrf") } else { kept.expect("a kept cookie").to_owned() };
    let html = page.text().await.expect("page");
    (csrf, form_token(&html), html)
}

/// The call form's fields for a call tomorrow at noon UTC, with anti-forgery token `token`.
fn call_form(token: &str) -> Vec<(&'static str, String)> {
    let date = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    vec![
        ("csrf_token", token.to_owned()),
        ("to", US.to_owned()),
        ("date", date),
        ("time", "12:00".to_owned()),
        ("timezone", "UTC".to_owned()),
    ]
}

async fn post_call_form(app: &TestApp, cookies: &str, token: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/", app.base))
        .header("cookie", cookies)
        .form(&call_form(token))
        .send()
        .await
        .expect("sent")
}

async fn create_rule(app: &TestApp, bearer: Option<&str>) -> String {
    let body = json!({"to": US, "timezone": "UTC", "repeat": "daily", "time": "12:00"});
    let mut request = app.http.post(format!("{}/api/schedules", app.base)).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let created = request.send().await.expect("sent");
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.expect("rule")["id"].as_str().expect("id").to_owned()
}

async fn pause_with(app: &TestApp, rule: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let request = app.http.post(format!("{}/api/schedules/{rule}/pause", app.base));
    headers.iter().fold(request, |request, (name, value)| request.header(*name, *value)).send().await.expect("sent")
}

// Case 3: DNS rebinding.

#[tokio::test]
async fn a_request_for_another_host_name_is_refused_so_a_rebound_name_cannot_reach_the_service() {
    let app = spawn_app().await;
    let rebound = format!("attacker.example:{}", port_of(&app));
    let body = json!({"to": US, "at": at_in(LATER)});

    let create = app.http.post(format!("{}/api/calls", app.base)).header("host", &rebound).json(&body).send();
    let list = app.http.get(format!("{}/api/calls", app.base)).header("host", &rebound).send();
    let page = app.http.get(format!("{}/", app.base)).header("host", &rebound).send();

    let refused = problem(create.await.expect("sent"), 421).await;
    assert!(refused["detail"].as_str().expect("detail").contains("Host"), "{refused}");
    problem(list.await.expect("sent"), 421).await;
    assert_eq!(page.await.expect("sent").status(), 421);
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn the_service_answers_its_own_names_the_configured_ones_and_health_checks_for_any_name() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_ALLOWED_HOSTS", "jokes.example.org, other.example:8443")])).await;
    let port = port_of(&app);
    let own = [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
    let configured = ["jokes.example.org".to_owned(), format!("JOKES.example.org:{port}"), "other.example:8443".into()];

    for host in own.iter().chain(&configured) {
        let response = app.http.get(format!("{}/api/calls", app.base)).header("host", host).send().await;
        assert_eq!(response.expect("sent").status(), 200, "{host}");
    }
    let wrong_port = app.http.get(format!("{}/api/calls", app.base)).header("host", "other.example:1").send().await;
    problem(wrong_port.expect("sent"), 421).await;
    for path in ["/health", "/ready"] {
        let response = app.http.get(format!("{}{path}", app.base)).header("host", "10.0.0.7:8080").send().await;
        assert_eq!(response.expect("sent").status(), 200, "{path}");
    }
}

// Case 4: anti-forgery tokens a page can make up or lift.

#[tokio::test]
async fn a_cookie_and_token_pair_a_same_site_page_made_up_or_lifted_does_not_act_for_a_signed_in_user() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    let session = sign_in(&app).await;
    let made_up = "ab".repeat(32);
    // A real pair anyone can get from the open sign-in page, then plant in a victim's browser.
    let lifted = cookie(&app.http.get(format!("{}/login", app.base)).send().await.expect("sent"), "dialajoke_csrf");

    for forged in [made_up, lifted] {
        let cookies = format!("dialajoke_session={session}; dialajoke_csrf={forged}");

        let response = post_call_form(&app, &cookies, &forged).await;

        assert_eq!(response.status(), 403, "{forged}");
    }
    assert_eq!(app.count_rows("calls").await, 0);
    let (csrf, token, _) = page_pair(&app, &format!("dialajoke_session={session}"), None).await;
    let own = post_call_form(&app, &format!("dialajoke_session={session}; dialajoke_csrf={csrf}"), &token).await;
    assert_eq!(own.status(), 303);
}

#[tokio::test]
async fn without_a_token_a_made_up_cookie_and_token_pair_is_refused_too() {
    let app = spawn_app().await;
    let made_up = "ab".repeat(32);

    let response = post_call_form(&app, &format!("dialajoke_csrf={made_up}"), &made_up).await;

    assert_eq!(response.status(), 403);
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn the_pages_anti_forgery_pair_still_works_after_a_restart() {
    let mut app = spawn_app().await;
    let (csrf, token, _) = page_pair(&app, "", None).await;

    app.restart().await;
    let response = post_call_form(&app, &format!("dialajoke_csrf={csrf}"), &token).await;

    assert_eq!(response.status(), 303);
}

// Case 5: state changes from another site.

#[tokio::test]
async fn a_cross_site_request_cannot_change_anything_even_through_the_api() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_CORS_ORIGINS", DASHBOARD)])).await;
    let rule = create_rule(&app, None).await;
    let cross_site: [&[(&str, &str)]; 4] = [
        &[("origin", EVIL)],
        &[("sec-fetch-site", "cross-site")],
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
        &[("origin", "http://localhost:3000"), ("sec-fetch-site", "same-site")],
    ];

    for headers in cross_site {
        let refused = problem(pause_with(&app, &rule, headers).await, 403).await;
        assert!(refused["detail"].as_str().expect("detail").contains("Origin"), "{headers:?}: {refused}");
    }

    let shown: Value = app.schedule(&rule).await.json().await.expect("rule");
    assert_eq!(shown["status"], "active");
    let own = app.base.clone();
    let allowed: [&[(&str, &str)]; 4] = [
        &[],
        &[("origin", own.as_str())],
        &[("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
        &[("origin", DASHBOARD), ("sec-fetch-site", "cross-site")],
    ];
    for headers in allowed {
        assert_eq!(pause_with(&app, &rule, headers).await.status(), 200, "{headers:?}");
    }
}

#[tokio::test]
async fn a_cross_site_form_with_a_valid_pair_is_refused_with_a_page() {
    let app = spawn_app().await;
    let (csrf, token, _) = page_pair(&app, "", None).await;

    let response = app
        .http
        .post(format!("{}/", app.base))
        .header("cookie", format!("dialajoke_csrf={csrf}"))
        .header("origin", EVIL)
        .form(&call_form(&token))
        .send()
        .await
        .expect("sent");

    assert_eq!(response.status(), 403);
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn with_a_token_the_session_cookie_alone_does_not_let_another_site_use_the_api() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    let session = sign_in(&app).await;
    let rule = create_rule(&app, Some(TOKEN)).await;
    let cookies = format!("dialajoke_session={session}");

    let refused = pause_with(&app, &rule, &[("cookie", cookies.as_str()), ("origin", EVIL)]).await;

    problem(refused, 403).await;
    assert_eq!(pause_with(&app, &rule, &[("cookie", cookies.as_str())]).await.status(), 200);
}

#[tokio::test]
async fn api_bodies_must_be_json_so_no_cross_site_form_can_send_one() {
    let app = spawn_app().await;
    let body = json!({"to": US, "at": at_in(LATER)}).to_string();

    for path in ["/api/calls", "/api/schedules"] {
        for media in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
            let response = app
                .http
                .post(format!("{}{path}", app.base))
                .header("content-type", media)
                .body(body.clone())
                .send()
                .await
                .expect("sent");

            problem(response, 415).await;
        }
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

// Case 9: slow bodies.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_to_the_api_or_a_form_is_cut_off_with_a_408() {
    let app = spawn_app().await;
    let routes = [
        ("/api/calls", "application/json"),
        ("/", "application/x-www-form-urlencoded"),
        ("/login", "application/x-www-form-urlencoded"),
    ];

    // 2,000 bytes at one per 50 ms would take 100 s: far beyond any deadline.
    let app = &app;
    let slow = routes.map(|(path, media)| async move {
        let headers = [format!("content-type: {media}")];
        let sent = post_trickled(app, path, &headers, vec![b' '; 2000], Duration::from_millis(50));
        (path, tokio::time::timeout(Duration::from_secs(30), sent).await)
    });
    let answers = futures_util::future::join_all(slow).await;

    for (path, answer) in answers {
        let ((status, head, _), _) = answer.unwrap_or_else(|_| panic!("{path}: no answer while the body trickled"));
        assert_eq!(status, 408, "{path}: {head}");
    }
}

// Case 10: sign-in, sessions and cookies.

#[tokio::test]
async fn sign_in_guesses_from_one_client_are_throttled_with_a_retry_after() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;

    let mut throttled = None;
    for _ in 0..20 {
        let response = attempt_sign_in(&app.http, &app, "not-the-token-at-all").await;
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
        assert_eq!(response.status(), 401);
    }

    let throttled = throttled.expect("twenty guesses in a row were all answered");
    let wait: u64 = throttled.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(wait > 0);
    assert_eq!(attempt_sign_in(&app.http, &app, TOKEN).await.status(), 429, "the right token waits too");
}

#[tokio::test]
async fn sign_in_guesses_spread_over_many_clients_are_throttled_in_all() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    // Each from its own loopback address, two guesses each: no one client comes near its limit.
    let clients: Vec<reqwest::Client> = (2..=60)
        .map(|n| {
            let address = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, n));
            let builder = reqwest::Client::builder().local_address(address);
            builder.redirect(reqwest::redirect::Policy::none()).build().expect("client")
        })
        .collect();

    let mut statuses = Vec::new();
    for client in &clients {
        for _ in 0..2 {
            statuses.push(attempt_sign_in(client, &app, "not-the-token-at-all").await.status().as_u16());
        }
    }

    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn signing_out_ends_the_session_for_every_copy_of_its_cookie() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    let session = sign_in(&app).await;
    let kept = format!("dialajoke_session={session}");
    let (csrf, token, html) = page_pair(&app, &kept, None).await;
    assert!(html.contains("action=\"/logout\""), "the page has a sign-out button");

    let out = app
        .http
        .post(format!("{}/logout", app.base))
        .header("cookie", format!("{kept}; dialajoke_csrf={csrf}"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("sent");

    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/login");
    let page = app.http.get(format!("{}/", app.base)).header("cookie", &kept).send().await.expect("sent");
    assert_eq!(page.status(), 303);
    let api = app.http.get(format!("{}/api/calls", app.base)).header("cookie", &kept).send().await.expect("sent");
    problem(api, 401).await;
}

#[tokio::test]
async fn a_session_ends_by_itself_after_its_configured_lifetime() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN), ("DIALAJOKE_SESSION_SECS", "3")])).await;
    let signed_in = attempt_sign_in(&app.http, &app, TOKEN).await;
    assert!(attributes(&set_cookie(&signed_in, "dialajoke_session")).contains(&"max-age=3".to_owned()));
    let cookies = format!("dialajoke_session={}", cookie(&signed_in, "dialajoke_session"));
    let page = || app.http.get(format!("{}/", app.base)).header("cookie", &cookies).send();
    assert_eq!(page().await.expect("sent").status(), 200);

    common::poll::poll_until("the session ended", FLOW_BOUND, || async {
        let status = page().await.expect("sent").status();
        if status == 200 { Err(status) } else { Ok(()) }
    })
    .await;

    assert_eq!(page().await.expect("sent").headers()["location"], "/login");
}

#[tokio::test]
async fn cookies_are_secure_by_configuration_never_because_a_client_says_https() {
    let plain = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    let secure =
        spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN), ("DIALAJOKE_SECURE_COOKIES", "true")])).await;
    let forwarded =
        |app: &TestApp| app.http.get(format!("{}/login", app.base)).header("x-forwarded-proto", "https").send();

    let login = forwarded(&plain).await.expect("sent");
    let csrf = cookie(&login, "dialajoke_csrf");
    let signed_in = plain
        .http
        .post(format!("{}/login", plain.base))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("dialajoke_csrf={csrf}"))
        .form(&[("csrf_token", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .expect("sent");

    assert!(!attributes(&set_cookie(&login, "dialajoke_csrf")).contains(&"secure".to_owned()));
    assert!(!attributes(&set_cookie(&signed_in, "dialajoke_session")).contains(&"secure".to_owned()));
    let login = forwarded(&secure).await.expect("sent");
    assert!(attributes(&set_cookie(&login, "dialajoke_csrf")).contains(&"secure".to_owned()));
    let signed_in = attempt_sign_in(&secure.http, &secure, TOKEN).await;
    assert!(attributes(&set_cookie(&signed_in, "dialajoke_session")).contains(&"secure".to_owned()));
}

// Case 12: what `/info` shows, and the order of the checks.

#[tokio::test]
async fn info_shows_the_telnyx_api_base_without_the_credentials_in_it() {
    let app =
        spawn_app_with(with_env(&[("TELNYX_API_BASE", "https://ops:s3cret@127.0.0.1:9/v2?api_key=k3y#frag")])).await;

    let info: Value =
        app.http.get(format!("{}/info", app.base)).send().await.expect("sent").json().await.expect("JSON");

    assert_eq!(info["telnyx_api_base"], "https://127.0.0.1:9/v2");
}

#[tokio::test]
async fn an_allowed_origins_preflight_is_answered_before_the_access_check() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN), ("DIALAJOKE_CORS_ORIGINS", DASHBOARD)])).await;

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/api/calls", app.base))
        .header("origin", DASHBOARD)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .expect("sent");

    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], DASHBOARD);
}

#[tokio::test]
async fn refusals_before_any_handler_carry_the_security_headers() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_API_TOKEN", TOKEN)])).await;
    let get = |path: &str, host: Option<&str>| {
        let request = app.http.get(format!("{}{path}", app.base));
        host.map_or(request.try_clone().expect("clonable"), |host| request.header("host", host)).send()
    };

    let refusals = [get("/api/calls", None), get("/", None), get("/api/calls", Some("attacker.example"))];

    for (response, status) in futures_util::future::join_all(refusals).await.into_iter().zip([401, 303, 421]) {
        let response = response.expect("sent");
        assert_eq!(response.status(), status);
        let headers = response.headers();
        assert_eq!(headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{status}");
        assert_eq!(headers.get("x-frame-options").map(|v| v.as_bytes()), Some(&b"DENY"[..]), "{status}");
        assert!(headers.contains_key("content-security-policy"), "{status}");
    }
}

/// Numbers that cost far more than a line or a mobile, each with the words its refusal uses.
const COSTLY: [(&str, &str); 8] = [
    ("+881 6 1234 5678", "satellite"),
    ("+870 301 234 567", "satellite"),
    ("+882 342 1234", "international network"),
    ("+883 510 012 345", "international network"),
    ("+888 1234 5678 901", "international network"),
    ("+44 70 1234 5678", "personal"),
    ("+353 700 123 456", "personal"),
    ("+44 76 4012 3456", "pager"),
];

fn weekly_rule(to: &str) -> Value {
    json!({"to": to, "timezone": "Europe/Dublin", "repeat": "weekly", "day": "sun", "time": "10:00"})
}

#[tokio::test]
async fn with_every_country_allowed_satellite_network_personal_and_pager_numbers_are_still_refused_naming_to() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_ALLOWED_COUNTRIES", "*")])).await;

    for (number, kind) in COSTLY {
        for response in [
            app.post_call(&json!({"to": number, "at": at_in(LATER)})).await,
            app.post_schedule(&weekly_rule(number)).await,
        ] {
            let refused = problem(response, 403).await;
            assert_eq!(refused["errors"][0]["field"], "to", "{number}");
            assert!(refused["detail"].as_str().expect("detail").contains(kind), "{number}: {refused}");
        }
    }

    assert_eq!((app.count_rows("calls").await, app.count_rows("schedules").await), (0, 0));
    assert_eq!(app.post_call(&json!({"to": IRISH, "at": at_in(LATER)})).await.status(), 201);
}

#[tokio::test]
async fn a_personal_number_in_an_allowed_country_is_refused_by_default() {
    let app = spawn_app_with(with_env(&[("DIALAJOKE_ALLOWED_COUNTRIES", "IE")])).await;

    let refused = problem(app.post_call(&json!({"to": "+353 700 123 456", "at": at_in(LATER)})).await, 403).await;

    assert_eq!(refused["errors"][0]["field"], "to");
    assert!(refused["detail"].as_str().expect("detail").contains("personal numbers"), "{refused}");
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn a_number_type_allowed_by_name_may_be_called_and_the_others_stay_refused() {
    let app = spawn_app_with(with_env(&[
        ("DIALAJOKE_ALLOWED_COUNTRIES", "*"),
        ("DIALAJOKE_ALLOWED_NUMBER_TYPES", "satellite,personal"),
    ]))
    .await;

    for number in ["+881 6 1234 5678", "+44 70 1234 5678"] {
        assert_eq!(app.post_call(&json!({"to": number, "at": at_in(LATER)})).await.status(), 201, "{number}");
    }
    assert_eq!(app.post_schedule(&weekly_rule("+870 301 234 567")).await.status(), 201);
    for number in ["+883 510 012 345", "+44 76 4012 3456"] {
        assert_eq!(app.post_call(&json!({"to": number, "at": at_in(LATER)})).await.status(), 403, "{number}");
    }
}

/// Holds the service's rule checks where they start until opened (and opens when dropped, so a
/// failing test lets them go).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Default)]
struct GateState {
    entered: usize,
    open: bool,
}

impl Gate {
    /// The probe the service calls as each check starts: it counts the check, then waits.
    fn probe(&self) -> dialajoke::app::rule_checks::Probe {
        let gate = self.clone();
        Arc::new(move || {
            let (state, opened) = &*gate.0;
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            state.entered += 1;
            while !state.open {
                state = opened.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        })
    }

    fn entered(&self) -> usize {
        self.0.0.lock().unwrap_or_else(PoisonError::into_inner).entered
    }

    fn open(&self) {
        self.0.0.lock().unwrap_or_else(PoisonError::into_inner).open = true;
        self.0.1.notify_all();
    }
}

/// Opens the gate when the test ends, however it ends.
struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_checks_in_flight_hold_up_neither_health_nor_webhooks_on_a_single_web_worker() {
    let gate = Gate::default();
    let _release = OpenOnDrop(gate.clone());
    let mut options = with_env(&[("DIALAJOKE_WEB_WORKERS", "1")]);
    options.probes.rule_check = Some(gate.probe());
    let app = spawn_app_with(options).await;
    // A pattern that never matches: the costliest search there was.
    let never = json!({"to": IRISH, "timezone": "Europe/Dublin", "repeat": "cron", "cron": "0 0 31 2,4,6,9,11 *"});
    let rules = futures_util::future::join_all((0..8).map(|_| app.post_schedule(&never)));
    let meanwhile = async {
        wait_until("a rule check is in flight", || gate.entered() > 0).await;
        let health = tokio::time::timeout(FLOW_BOUND, app.http.get(format!("{}/health", app.base)).send()).await;
        let webhook =
            tokio::time::timeout(FLOW_BOUND, app.post_webhook(webhook_event("call.answered", |_| {}).1)).await;
        gate.open();
        (health, webhook)
    };

    let (responses, (health, webhook)) = tokio::join!(rules, meanwhile);

    let health = health.expect("/health answered while rule checks were held").expect("sent");
    assert_eq!(health.status(), 200);
    assert_eq!(webhook.expect("the webhook answered while rule checks were held").status(), 200);
    for response in responses {
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("problem JSON");
        assert_eq!(problem["errors"][0]["field"], "cron", "{problem}");
        assert!(problem["errors"][0]["message"].as_str().is_some_and(|m| m.contains("would not ring")), "{problem}");
    }
    assert_eq!(app.count_rows("schedules").await, 0);
}

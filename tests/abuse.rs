//! Abuse protection: an access token for the page and the API when configured, destination
//! countries (by default only the caller id's own) and number types, per-number and global
//! scheduling limits, and rule checks that never hold up other requests. Every refusal is a
//! clear problem document and stores nothing.

mod common;

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use common::{FLOW_BOUND, Options, at_in, spawn_app_with, wait_until, webhook_event};
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
    fn probe(&self) -> dialajoke::rules::checks::Probe {
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

//! Recurring rules through the API, against the real service: a rule gets its next call at once,
//! in its own zone; it is listed, paused, resumed and deleted; every wrong field, a country not
//! allowed, a time in quiet hours and a rhythm over the limits are refused; and an occurrence
//! that is ringing when the service restarts rings once, after which the rule moves on.

use crate::common;

use std::time::Duration;

use chrono::{Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Dublin;
use common::{Options, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use telnyx_sim::{Behaviour, JournalEntry, RequestKind, test_number};

fn weekly_sunday_at_ten(to: &str) -> Value {
    json!({"to": to, "timezone": "Europe/Dublin", "repeat": "weekly", "day": "sunday", "time": "10:00"})
}

fn daily_at(to: &str, time: &str) -> Value {
    json!({"to": to, "timezone": "Europe/Dublin", "repeat": "daily", "time": time})
}

async fn create(app: &TestApp, body: &Value) -> Value {
    let response = app.post_schedule(body).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.expect("rule JSON")
}

async fn act(app: &TestApp, id: &str, action: &str) -> reqwest::Response {
    app.http.post(format!("{}/api/schedules/{id}/{action}", app.base)).send().await.expect("request sent")
}

/// The fields a 422 names, in order.
async fn refused_fields(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 422);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.expect("problem JSON");
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

/// The next Sunday 10:00 in Dublin after now, worked out by hand.
fn next_sunday_ten_in_dublin() -> chrono::DateTime<Utc> {
    let now = Utc::now();
    let today = now.with_timezone(&Dublin).date_naive();
    (0..8)
        .map(|days| today + chrono::Duration::days(days))
        .filter(|day| day.weekday() == Weekday::Sun)
        .filter_map(|day| Dublin.from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(10, 0, 0)?)).single())
        .map(|at| at.with_timezone(&Utc))
        .find(|at| *at > now)
        .expect("a Sunday within a week")
}

fn rule_calls(calls: &[Value], rule: &str) -> Vec<Value> {
    calls.iter().filter(|call| call["rule_id"] == rule).cloned().collect()
}

#[tokio::test]
async fn a_weekly_rule_gets_its_next_sunday_call_at_once_in_its_own_zone() {
    let app = spawn_app().await;

    let response = app.post_schedule(&weekly_sunday_at_ten(test_number(Behaviour::Answer))).await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    let rule: Value = response.json().await.expect("rule JSON");
    assert_eq!(location, format!("/api/schedules/{}", rule["id"].as_str().expect("id")));
    assert_eq!(rule["status"], "active");
    assert_eq!(rule["cron"], "0 10 * * 0");
    assert_eq!(rule["description"], "every Sunday at 10:00 (Europe/Dublin)");
    assert_eq!(rule["catch_up"], "once");
    assert_eq!(rule["catch_up_minutes"], 60);
    let expected = next_sunday_ten_in_dublin().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(rule["next_call"]["due_at"], expected);
    let call = app.call(rule["next_call"]["id"].as_str().expect("call id")).await;
    assert_eq!(
        (&call["status"], &call["rule_id"], &call["timezone"]),
        (&json!("scheduled"), &rule["id"], &json!("Europe/Dublin"))
    );
    assert_eq!((&call["due_at"], &call["occurrence_at"]), (&json!(expected), &json!(expected)));
    let listing: Value =
        app.http.get(format!("{}/api/schedules", app.base)).send().await.expect("sent").json().await.expect("JSON");
    assert_eq!(listing["schedules"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn pausing_cancels_the_waiting_call_and_resuming_brings_the_same_occurrence_back() {
    let app = spawn_app().await;
    let rule = create(&app, &daily_at(test_number(Behaviour::Answer), "12:00")).await;
    let id = rule["id"].as_str().expect("id");
    let first = rule["next_call"].clone();

    let paused: Value = act(&app, id, "pause").await.json().await.expect("JSON");
    let paused_again = act(&app, id, "pause").await;

    assert_eq!((&paused["status"], &paused["next_call"]), (&json!("paused"), &Value::Null));
    assert_eq!(paused_again.status(), 200);
    let cancelled = app.call(first["id"].as_str().expect("call id")).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["events"].as_array().expect("events").iter().any(|e| e["detail"] == "the rule was paused"));

    let resumed: Value = act(&app, id, "resume").await.json().await.expect("JSON");

    assert_eq!(resumed["status"], "active");
    assert_ne!(resumed["next_call"]["id"], first["id"]);
    assert_eq!(resumed["next_call"]["due_at"], first["due_at"]);
}

#[tokio::test]
async fn deleting_a_rule_cancels_its_waiting_call_and_forgets_the_rule() {
    let app = spawn_app().await;
    let rule = create(&app, &daily_at(test_number(Behaviour::Answer), "12:00")).await;
    let id = rule["id"].as_str().expect("id");

    let deleted = app.http.delete(format!("{}/api/schedules/{id}", app.base)).send().await.expect("sent");

    assert_eq!(deleted.status(), 204);
    assert_eq!(app.schedule(id).await.status(), 404);
    assert_eq!(app.call(rule["next_call"]["id"].as_str().expect("call id")).await["status"], "cancelled");
    let again = app.http.delete(format!("{}/api/schedules/{id}", app.base)).send().await.expect("sent");
    assert_eq!(again.status(), 404);
    assert_eq!(act(&app, "not-a-rule", "pause").await.status(), 404);
}

#[tokio::test]
async fn every_wrong_field_of_a_rule_is_a_422_naming_it_and_nothing_is_stored() {
    let app = spawn_app().await;
    let answer = test_number(Behaviour::Answer);
    let cases = [
        (json!({}), vec!["to", "timezone", "repeat"]),
        (json!({"to": answer, "timezone": "Europe/Dublin", "repeat": "weekly"}), vec!["day", "time"]),
        (json!({"to": answer, "timezone": "Europe/Dublin", "repeat": "fortnightly"}), vec!["repeat"]),
        (json!({"to": answer, "timezone": "Europe/Dublin", "repeat": "cron", "cron": "0 0 10 * * SUN"}), vec!["cron"]),
        (json!({"to": answer, "timezone": "Mars/Olympus", "repeat": "daily", "time": "10:00"}), vec!["timezone"]),
        (
            json!({"to": answer, "timezone": "UTC", "repeat": "daily", "time": "10:00", "catch_up": "later"}),
            vec!["catch_up"],
        ),
        (
            json!({"to": answer, "timezone": "UTC", "repeat": "daily", "time": "10:00", "catch_up_minutes": "0"}),
            vec!["catch_up_minutes"],
        ),
        (json!({"to": 12015550100_u64, "timezone": "UTC", "repeat": "daily", "time": "10:00"}), vec!["to"]),
        (
            json!({"to": answer, "timezone": "UTC", "repeat": "daily", "time": "10:00", "colour": "blue"}),
            vec!["colour"],
        ),
        (json!({"to": answer, "timezone": "UTC", "repeat": "cron", "cron": "0 10 30 2 *"}), vec!["cron"]),
    ];

    for (body, expected) in cases {
        assert_eq!(refused_fields(app.post_schedule(&body).await).await, expected, "{body}");
    }

    let listing: Value =
        app.http.get(format!("{}/api/schedules", app.base)).send().await.expect("sent").json().await.expect("JSON");
    assert_eq!(listing["schedules"], json!([]));
    assert!(app.all_calls().await.is_empty());
}

#[tokio::test]
async fn a_rule_to_a_country_calls_may_not_go_to_is_refused() {
    let app = spawn_app().await;

    let response = app.post_schedule(&daily_at("+44 20 7946 0018", "12:00")).await;

    assert_eq!(response.status(), 403);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "to");
}

#[tokio::test]
async fn a_rule_ringing_more_often_than_the_per_number_limit_allows_is_refused() {
    let options = Options { env: vec![("DIALAJOKE_LIMIT_PER_NUMBER_HOUR", "10".to_owned())], ..Options::default() };
    let app = spawn_app_with(options).await;
    let every_five_minutes =
        json!({"to": test_number(Behaviour::Answer), "timezone": "UTC", "repeat": "cron", "cron": "*/5 * * * *"});

    let response = app.post_schedule(&every_five_minutes).await;

    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "cron");
    assert!(problem["errors"][0]["message"].as_str().is_some_and(|m| m.contains("12 times in an hour")), "{problem}");
    let hourly =
        json!({"to": test_number(Behaviour::Answer), "timezone": "UTC", "repeat": "cron", "cron": "0 * * * *"});
    assert_eq!(app.post_schedule(&hourly).await.status(), 201);
}

#[tokio::test]
async fn a_rule_whose_time_falls_in_the_callees_quiet_hours_is_refused_naming_the_time() {
    let options = Options { env: vec![("DIALAJOKE_CALLING_HOURS", "08:00-21:00".to_owned())], ..Options::default() };
    let app = spawn_app_with(options).await;

    let late = app.post_schedule(&daily_at(test_number(Behaviour::Answer), "23:30")).await;
    let cron_at_night = json!({"to": test_number(Behaviour::Answer), "timezone": "Europe/Dublin", "repeat": "cron", "cron": "0 7,12 * * *"});

    assert_eq!(refused_fields(late).await, ["time"]);
    assert_eq!(refused_fields(app.post_schedule(&cron_at_night).await).await, ["cron"]);
    assert_eq!(app.post_schedule(&daily_at(test_number(Behaviour::Answer), "20:59")).await.status(), 201);
}

#[tokio::test]
async fn rules_need_the_access_token_like_calls() {
    let options =
        Options { env: vec![("DIALAJOKE_API_TOKEN", "a-long-enough-token-0123".to_owned())], ..Options::default() };
    let app = spawn_app_with(options).await;

    let anonymous = app.post_schedule(&daily_at(test_number(Behaviour::Answer), "12:00")).await;
    let listing = app.http.get(format!("{}/api/schedules", app.base)).send().await.expect("sent");

    assert_eq!(anonymous.status(), 401);
    assert_eq!(listing.status(), 401);
}

#[tokio::test]
async fn an_occurrence_ringing_across_a_restart_rings_once_and_the_rule_moves_on() {
    let mut options = Options::default();
    options.sim.timing.ring = Duration::from_millis(1500);
    options.sim.timing.first_retry = Duration::from_millis(500);
    options.sim.timing.delivery_attempts = 6;
    let mut app = spawn_app_with(options).await;
    let rule = create(&app, &daily_at(test_number(Behaviour::Answer), "12:00")).await;
    let rule_id = rule["id"].as_str().expect("id").to_owned();
    let call_id = rule["next_call"]["id"].as_str().expect("call id").to_owned();
    let occurrence = app.call(&call_id).await["occurrence_at"].clone();
    // Bring the occurrence's call forward to a moment from now (the API only makes future ones).
    app.stop().await;
    let soon = (Utc::now() + chrono::Duration::milliseconds(700)).timestamp_millis();
    sqlx::query("UPDATE calls SET due_at = ? WHERE id = ?")
        .bind(soon)
        .bind(&call_id)
        .execute(&app.db().await)
        .await
        .expect("update");
    app.start_on_same_port().await;
    app.wait_for(&call_id, |call| call["status"] == "ringing").await;

    app.stop().await;
    common::wait_until("a webhook delivery failed while the service was down", || {
        app.sim.journal().iter().any(|entry| matches!(entry, JournalEntry::Delivery(d) if !d.outcome.is_delivered()))
    })
    .await;
    app.start_on_same_port().await;
    let call = app.wait_until_final(&call_id).await;

    assert_eq!(call["status"], "completed");
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 1);
    let made = rule_calls(&app.all_calls().await, &rule_id);
    assert_eq!(made.len(), 2, "{made:#?}");
    let next = made.iter().find(|c| c["id"] != call_id.as_str()).expect("the next occurrence's call");
    let day = chrono::Duration::days(1);
    let occurrence: chrono::DateTime<Utc> = occurrence.as_str().expect("occurrence").parse().expect("instant");
    let next_occurrence: chrono::DateTime<Utc> =
        next["occurrence_at"].as_str().expect("occurrence").parse().expect("instant");
    assert_eq!(next["status"], "scheduled");
    // The next day's noon in Dublin, whatever the clocks do overnight.
    let next_noon = occurrence.with_timezone(&Dublin).date_naive() + day;
    let expected = Dublin.from_local_datetime(&next_noon.and_hms_opt(12, 0, 0).expect("time")).single().expect("noon");
    assert_eq!(next_occurrence, expected.with_timezone(&Utc));
    let shown: Value = app.schedule(&rule_id).await.json().await.expect("rule");
    assert_eq!(shown["next_call"]["id"], next["id"]);
}

//! The JSON API: scheduling, validation, idempotency, listing, lookup and cancelling.

use crate::common;

use std::time::Duration;

use common::{at_in, future_year, last_sunday, spawn_app, spawn_app_with, ten_year_horizon};
use serde_json::{Value, json};

const IRISH: &str = "+353 1 234 5678";
const LATER: Duration = Duration::from_secs(3600);

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.expect("problem JSON")
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

#[tokio::test]
async fn scheduling_returns_201_with_location_and_the_call_in_e164_and_utc() {
    let app = spawn_app_with(ten_year_horizon()).await;
    let year = future_year();

    let response = app
        .post_call(&json!({"to": IRISH, "date": format!("{year}-07-01"), "time": "09:30", "timezone": "Europe/Dublin"}))
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    let call: Value = response.json().await.expect("JSON");
    assert_eq!(location, format!("/api/calls/{}", call["id"].as_str().expect("id")));
    assert_eq!(call["to"], "+35312345678");
    assert_eq!(call["due_at"], format!("{year}-07-01T08:30:00Z"));
    assert_eq!(call["timezone"], "Europe/Dublin");
    assert_eq!(call["status"], "scheduled");
}

#[tokio::test]
async fn a_scheduled_call_can_be_read_back_with_its_history() {
    let app = spawn_app().await;
    let created = app.schedule_in(IRISH, LATER).await;

    let call = app.call(created["id"].as_str().expect("id")).await;

    assert_eq!(call["status"], "scheduled");
    assert_eq!(common::TestApp::event_kinds(&call), ["scheduled"]);
}

#[tokio::test]
async fn each_invalid_field_is_named_with_a_reason_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases = [
        (json!({"to": "12345", "at": at_in(LATER)}), "to"),
        (json!({"to": "+1 900 555 0123", "at": at_in(LATER)}), "to"),
        (json!({"to": "", "at": at_in(LATER)}), "to"),
        (json!({"to": IRISH, "at": "tomorrow"}), "at"),
        (json!({"to": IRISH, "at": "2001-01-01T00:00:00Z"}), "at"),
        (json!({"to": IRISH, "at": "2999-01-01T00:00:00Z"}), "at"),
        (json!({"to": IRISH, "date": "2030-02-30", "time": "10:00", "timezone": "UTC"}), "date"),
        (json!({"to": IRISH, "date": "2030-02-01", "time": "24:30", "timezone": "UTC"}), "time"),
        (json!({"to": IRISH, "date": "2030-02-01", "time": "10:00", "timezone": "Atlantis/Lost"}), "timezone"),
        (
            json!({"to": IRISH, "date": last_sunday(future_year() - 1, 3), "time": "01:30", "timezone": "Europe/Dublin"}),
            "time",
        ),
        (json!({"to": 353, "at": at_in(LATER)}), "to"),
        (json!({"to": IRISH, "at": at_in(LATER), "when": "now"}), "when"),
    ];
    for (body, field) in cases {
        let problem = problem(app.post_call(&body).await, 422).await;
        assert_eq!(fields(&problem), [field], "{body}");
        let error = &problem["errors"][0];
        assert_eq!(error["pointer"], format!("/{field}"));
        assert!(!error["message"].as_str().expect("message").is_empty());
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn a_local_time_that_does_not_exist_says_so() {
    let app = spawn_app_with(ten_year_horizon()).await;
    let body =
        json!({"to": IRISH, "date": last_sunday(future_year(), 3), "time": "01:30", "timezone": "Europe/Dublin"});

    let problem = problem(app.post_call(&body).await, 422).await;

    assert!(problem["errors"][0]["message"].as_str().expect("message").contains("does not exist"));
}

#[tokio::test]
async fn an_ambiguous_local_time_takes_the_earlier_instant_and_the_response_says_which() {
    let app = spawn_app_with(ten_year_horizon()).await;
    let date = last_sunday(future_year(), 10);
    let body = json!({"to": IRISH, "date": date, "time": "01:30", "timezone": "Europe/Dublin"});

    let response = app.post_call(&body).await;

    assert_eq!(response.status(), 201);
    let call: Value = response.json().await.expect("JSON");
    // 01:30 happens first in summer time (UTC+1), then again in winter time (UTC+0).
    assert_eq!(call["due_at"], format!("{date}T00:30:00Z"));
    assert!(call["note"].as_str().expect("note").contains("twice"));
}

#[tokio::test]
async fn a_retried_post_with_the_same_idempotency_key_returns_the_first_call() {
    let app = spawn_app().await;
    let body = json!({"to": IRISH, "at": at_in(LATER)});
    let post =
        || app.http.post(format!("{}/api/calls", app.base)).header("Idempotency-Key", "order-42").json(&body).send();

    let first: Value = post().await.expect("sent").json().await.expect("JSON");
    let again = post().await.expect("sent");

    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let second: Value = again.json().await.expect("JSON");
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.count_rows("calls").await, 1);
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_is_a_conflict() {
    let app = spawn_app().await;
    let at = at_in(LATER);
    let send = |to: &str| {
        let body = json!({"to": to, "at": at});
        app.http.post(format!("{}/api/calls", app.base)).header("Idempotency-Key", "k1").json(&body).send()
    };

    assert_eq!(send(IRISH).await.expect("sent").status(), 201);
    problem(send("+1 202 555 0142").await.expect("sent"), 409).await;
}

#[tokio::test]
async fn listing_is_newest_first_filterable_by_status_and_paginated() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.schedule_in(IRISH, LATER).await["id"].clone());
    }
    let cancelled = ids[0].as_str().expect("id");
    app.http.delete(format!("{}/api/calls/{cancelled}", app.base)).send().await.expect("sent");

    let page: Value =
        app.http.get(format!("{}/api/calls?limit=2", app.base)).send().await.expect("sent").json().await.expect("JSON");
    let only: Value = app
        .http
        .get(format!("{}/api/calls?status=cancelled", app.base))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");

    let listed: Vec<&Value> = page["calls"].as_array().expect("calls").iter().map(|c| &c["id"]).collect();
    assert_eq!(listed, [&ids[2], &ids[1]]);
    assert_eq!(page["next"], "/api/calls?limit=2&offset=2");
    assert_eq!(only["calls"].as_array().expect("calls").len(), 1);
    assert_eq!(only["calls"][0]["id"], ids[0]);
}

#[tokio::test]
async fn an_unknown_status_filter_is_named() {
    let app = spawn_app().await;

    let response = app.http.get(format!("{}/api/calls?status=ringin", app.base)).send().await.expect("sent");

    assert_eq!(fields(&problem(response, 422).await), ["status"]);
}

#[tokio::test]
async fn cancelling_a_scheduled_call_works_once_then_conflicts() {
    let app = spawn_app().await;
    let id = app.schedule_in(IRISH, LATER).await["id"].as_str().expect("id").to_owned();
    let cancel = || app.http.delete(format!("{}/api/calls/{id}", app.base)).send();

    let first = cancel().await.expect("sent");
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.expect("JSON")["status"], "cancelled");
    problem(cancel().await.expect("sent"), 409).await;
    assert_eq!(common::TestApp::event_kinds(&app.call(&id).await), ["scheduled", "cancelled"]);
}

#[tokio::test]
async fn unknown_calls_are_404_problems() {
    let app = spawn_app().await;
    for id in ["6d1c2a52-8f0e-4f51-9d55-1f1f1f1f1f1f", "not-a-uuid"] {
        problem(app.http.get(format!("{}/api/calls/{id}", app.base)).send().await.expect("sent"), 404).await;
        problem(app.http.delete(format!("{}/api/calls/{id}", app.base)).send().await.expect("sent"), 404).await;
    }
}

#[tokio::test]
async fn a_call_in_the_callees_quiet_hours_is_refused_naming_the_field_that_set_the_time() {
    let mut options = ten_year_horizon();
    options.env.push(("DIALAJOKE_CALLING_HOURS", "08:00-21:00".to_owned()));
    let app = spawn_app_with(options).await;
    let year = future_year();

    let late_local = app
        .post_call(&json!({"to": IRISH, "date": format!("{year}-01-15"), "time": "21:00", "timezone": "Europe/Dublin"}))
        .await;
    // A bare instant to an Irish number is judged on Dublin's clock (GMT in January).
    let night_instant = app.post_call(&json!({"to": IRISH, "at": format!("{year}-01-15T07:59:00Z")})).await;
    let last_minute = app
        .post_call(&json!({"to": IRISH, "date": format!("{year}-01-15"), "time": "20:59", "timezone": "Europe/Dublin"}))
        .await;

    let late = problem(late_local, 422).await;
    assert_eq!(fields(&late), ["time"]);
    assert!(late["errors"][0]["message"].as_str().is_some_and(|m| m.contains("quiet hours")), "{late}");
    assert_eq!(fields(&problem(night_instant, 422).await), ["at"]);
    assert_eq!(last_minute.status(), 201);
}

//! Hostile scheduling input, table-driven: every field of a call and of a recurring rule tried
//! with wrong types, empty, huge, unicode, control characters, injection strings, impossible
//! dates, DST gaps, past times, unknown zones, premium-rate and malformed numbers. Each gets 422
//! naming the field, and nothing is stored.

use crate::common;

use std::time::Duration;

use common::{at_in, future_year, last_sunday, spawn_app_with, ten_year_horizon};
use serde_json::{Value, json};

const GOOD_TO: &str = "+353 1 234 5678";

/// A request that is valid except for `field`, which is set to `value`.
fn with(field: &str, value: Value) -> Value {
    let year = future_year();
    let mut body = if ["date", "time", "timezone"].contains(&field) {
        json!({"to": GOOD_TO, "date": format!("{year}-06-01"), "time": "10:00", "timezone": "Europe/Dublin"})
    } else {
        json!({"to": GOOD_TO, "at": at_in(Duration::from_secs(3600))})
    };
    body[field] = value;
    body
}

fn hostile_values() -> Vec<(&'static str, Value)> {
    vec![
        ("a number", json!(42)),
        ("a boolean", json!(true)),
        ("an array", json!(["+35312345678"])),
        ("an object", json!({"$ne": null})),
        ("empty", json!("")),
        ("blank", json!("   ")),
        // Long but under the body limit (a larger body is a 413, tested with the other problems).
        ("huge", json!("9".repeat(10_000))),
        ("unicode digits", json!("+٣٥٣١٢٣٤٥٦٧٨")),
        ("emoji", json!("📞📞📞")),
        ("a NUL byte", json!("+353\u{0}12345678")),
        ("a newline", json!("+3531234\n5678")),
        ("SQL injection", json!("'; DROP TABLE calls; --")),
        ("markup", json!("<script>alert(1)</script>")),
        ("a template", json!("{{ 7 * 7 }}")),
        ("a path", json!("../../etc/passwd")),
    ]
}

/// A weekly (or, for `cron`, a cron) rule that is valid except for `field`, set to `value`.
fn rule_with(field: &str, value: Value) -> Value {
    let repeat = if field == "cron" { "cron" } else { "weekly" };
    let mut body = json!({
        "to": GOOD_TO, "timezone": "Europe/Dublin", "repeat": repeat, "day": "sun", "time": "10:00",
        "cron": "0 10 * * SUN", "catch_up": "once", "catch_up_minutes": "60",
    });
    body[field] = value;
    body
}

async fn assert_refused(app: &common::TestApp, body: &Value, field: &str, what: &str) {
    assert_refused_by(app.post_call(body).await, field, what).await;
}

async fn assert_refused_by(response: reqwest::Response, field: &str, what: &str) {
    assert_eq!(response.status(), 422, "{field} = {what}");
    let problem: Value = response.json().await.expect("problem JSON");
    let fields: Vec<&str> =
        problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert!(fields.contains(&field), "{field} = {what}: {problem}");
}

#[tokio::test]
async fn every_field_refuses_every_hostile_value_by_name_and_stores_nothing() {
    let app = spawn_app_with(ten_year_horizon()).await;
    for field in ["to", "at", "date", "time", "timezone"] {
        for (what, value) in hostile_values() {
            assert_refused(&app, &with(field, value), field, what).await;
        }
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn every_rule_field_refuses_every_hostile_value_by_name_and_stores_nothing() {
    let app = spawn_app_with(ten_year_horizon()).await;
    for field in ["to", "timezone", "repeat", "time", "day", "cron", "catch_up", "catch_up_minutes"] {
        for (what, value) in hostile_values() {
            // The catch-up fields are optional: left empty, they take their defaults.
            if field.starts_with("catch_up") && value.as_str().is_some_and(|v| v.trim().is_empty()) {
                continue;
            }
            assert_refused_by(app.post_schedule(&rule_with(field, value)).await, field, what).await;
        }
    }
    assert_eq!((app.count_rows("schedules").await, app.count_rows("calls").await), (0, 0));
}

#[tokio::test]
async fn impossible_and_badly_timed_moments_are_refused_by_name() {
    let app = spawn_app_with(ten_year_horizon()).await;
    let year = future_year();
    let cases = [
        ("date", json!(format!("{year}-02-30")), "30 February"),
        ("date", json!(format!("{year}-13-01")), "month 13"),
        ("date", json!("0000-01-01"), "year zero"),
        ("date", json!(format!("{}-01-01", year + 20)), "beyond the horizon"),
        ("time", json!("24:00"), "hour 24"),
        ("time", json!("10:60"), "minute 60"),
        ("time", json!("-01:00"), "negative"),
        ("timezone", json!("Mars/Olympus_Mons"), "unknown zone"),
        ("timezone", json!("europe/dublin "), "wrong case"),
        ("at", json!("2001-01-01T00:00:00Z"), "the past"),
        ("at", json!("2026-11-24T10:00:00"), "no offset"),
        ("at", json!("9999-99-99T99:99:99Z"), "nonsense"),
    ];
    for (field, value, what) in cases {
        assert_refused(&app, &with(field, value), field, what).await;
    }
    let gap = json!({"to": GOOD_TO, "date": last_sunday(year, 3), "time": "01:30", "timezone": "Europe/Dublin"});
    assert_refused(&app, &gap, "time", "a DST gap").await;
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn premium_rate_and_malformed_numbers_are_refused() {
    let app = spawn_app_with(ten_year_horizon()).await;
    let numbers = [
        ("+1 900 555 0123", "US premium rate"),
        ("+44 909 879 0000", "UK premium rate"),
        ("+353 1 234", "too short"),
        ("+353 1 234 5678 9012 3456", "too long"),
        ("00353 1 234 5678", "no plus"),
        ("+999 123 4567", "no such country"),
        ("tel:+35312345678", "a URI"),
        ("sip:alice@example.com", "a SIP address"),
    ];
    for (number, what) in numbers {
        assert_refused(&app, &with("to", json!(number)), "to", what).await;
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_400_problem_and_stores_nothing() {
    let app = spawn_app_with(ten_year_horizon()).await;
    for body in [json!([]), json!("to"), json!(null), json!(1)] {
        assert_eq!(app.post_call(&body).await.status(), 400, "{body}");
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

/// Any JSON value, nested a few levels, with the request's field names mixed in.
fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        "[-+0-9 :TZ/a-zA-Z_]{0,30}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        let key = prop_oneof![
            Just("to".to_owned()),
            Just("at".to_owned()),
            Just("date".to_owned()),
            Just("time".to_owned()),
            Just("timezone".to_owned()),
            Just("repeat".to_owned()),
            Just("day".to_owned()),
            Just("cron".to_owned()),
            Just("catch_up_minutes".to_owned()),
            any::<String>()
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[tokio::test]
async fn no_random_json_body_makes_the_api_fail_on_our_side() {
    use proptest::strategy::{Strategy, ValueTree};
    let app = spawn_app_with(ten_year_horizon()).await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..300 {
        let body = any_json().new_tree(&mut runner).expect("a value").current();
        let response = app.post_call(&body).await;
        assert!(response.status().as_u16() < 500, "{body} → {}", response.status());
        let response = app.post_schedule(&body).await;
        assert!(response.status().as_u16() < 500, "rule {body} → {}", response.status());
    }
}

//! Retries against the simulator's busy, no-answer, reject and answer numbers: a busy or
//! unanswered call is tried again as many times as configured, each retry a call with its own
//! history; a rejected or completed one never is. The spacing is shrunk to a second here
//! (`DIALAJOKE_RETRY_SPACING_SECS`; ten minutes by default).

use crate::common;

use chrono::{DateTime, Utc};
use common::flow::{SOON, wait_until_applied};
use common::{FLOW_BOUND, Options, TestApp, spawn_app_with};
use serde_json::Value;
use telnyx_sim::{Behaviour, RequestKind, test_number};

fn retrying(retries: u32) -> Options {
    let env = vec![("DIALAJOKE_RETRY_ATTEMPTS", retries.to_string()), ("DIALAJOKE_RETRY_SPACING_SECS", "1".to_owned())];
    Options { env, ..Options::default() }
}

/// The first call and its retries, in order, with their histories.
async fn chain(app: &TestApp, first: &str) -> Vec<Value> {
    let mut calls: Vec<Value> =
        app.all_calls().await.into_iter().filter(|call| call["id"] == first || call["retry_of"] == first).collect();
    calls.sort_by_key(|call| call["retry"].as_u64().unwrap_or(0));
    let mut detailed = Vec::new();
    for call in calls {
        detailed.push(app.call(call["id"].as_str().expect("id")).await);
    }
    detailed
}

/// Waits until the chain started by `first` has `length` calls, all final.
async fn chain_of(app: &TestApp, first: &str, length: usize) -> Vec<Value> {
    common::poll::poll_until("the chain got there", FLOW_BOUND * 2, || async {
        let calls = chain(app, first).await;
        let done = calls.len() == length && calls.iter().all(|call| common::is_final(&call["status"]));
        if done { Ok(calls) } else { Err(calls) }
    })
    .await
}

fn time_of(call: &Value, kind: &str) -> DateTime<Utc> {
    let entry = call["events"].as_array().expect("events").iter().find(|e| e["kind"] == kind).expect("entry");
    entry["time"].as_str().expect("time").parse().expect("instant")
}

async fn retried(behaviour: Behaviour, status: &str) {
    let app = spawn_app_with(retrying(2)).await;
    let first = app.schedule_in(test_number(behaviour), SOON).await;
    let first = first["id"].as_str().expect("id");

    let calls = chain_of(&app, first, 3).await;
    wait_until_applied(&app).await;

    assert_eq!(calls.iter().map(|c| c["status"].as_str().expect("status")).collect::<Vec<_>>(), [status; 3]);
    assert_eq!(calls.iter().map(|c| c["retry"].as_u64()).collect::<Vec<_>>(), [None, Some(1), Some(2)]);
    assert!(calls[1..].iter().all(|retry| retry["retry_of"] == first));
    for (previous, retry) in calls.iter().zip(&calls[1..]) {
        assert!(TestApp::event_kinds(previous).contains(&"retry_scheduled".to_owned()));
        // Each retry was dialled no sooner than the spacing after the call before it ended.
        assert!(time_of(retry, "dialing") >= time_of(previous, "call.hangup") + chrono::Duration::seconds(1));
        assert_eq!(TestApp::event_kinds(retry).first().map(String::as_str), Some("scheduled"));
    }
    assert!(!TestApp::event_kinds(&calls[2]).contains(&"retry_scheduled".to_owned()));
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 3);
    assert_eq!(chain(&app, first).await.len(), 3);
}

#[tokio::test]
async fn a_busy_line_is_tried_twice_more_each_retry_its_own_call() {
    retried(Behaviour::Busy, "busy").await;
}

#[tokio::test]
async fn an_unanswered_call_is_tried_twice_more_each_retry_its_own_call() {
    retried(Behaviour::NoAnswer, "no_answer").await;
}

#[tokio::test]
async fn rejected_and_completed_calls_are_never_retried() {
    let app = spawn_app_with(retrying(2)).await;
    let rejected = app.schedule_in(test_number(Behaviour::Reject), SOON).await;
    let completed = app.schedule_in(test_number(Behaviour::Answer), SOON).await;

    for call in [&rejected, &completed] {
        app.wait_until_final(call["id"].as_str().expect("id")).await;
    }
    app.sim.wait_until_idle(FLOW_BOUND).await.expect("simulator settles");
    wait_until_applied(&app).await;

    assert_eq!(app.call(rejected["id"].as_str().expect("id")).await["status"], "rejected");
    assert_eq!(app.call(completed["id"].as_str().expect("id")).await["status"], "completed");
    assert_eq!(app.all_calls().await.len(), 2);
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 2);
}

#[tokio::test]
async fn a_dial_telnyx_refuses_with_a_4xx_is_never_retried() {
    let mut options = retrying(2);
    // The simulator answers a key it does not know with 401.
    options.env.push(("TELNYX_API_KEY", "not-the-simulators-key".to_owned()));
    let app = spawn_app_with(options).await;
    let call = app.schedule_in(test_number(Behaviour::Busy), SOON).await;

    let failed = app.wait_until_final(call["id"].as_str().expect("id")).await;

    assert_eq!(failed["status"], "failed");
    assert!(failed["last_error"].as_str().is_some_and(|e| e.contains("401")), "{failed:#}");
    assert_eq!(app.all_calls().await.len(), 1);
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 1);
}

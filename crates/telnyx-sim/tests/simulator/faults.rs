//! Injected faults: API answers that fail or never come, webhooks duplicated, reordered,
//! delayed or dropped, and the admin endpoints that switch them at run time.

use std::time::Duration;

use serde_json::{Value, json};
use telnyx_sim::{
    ApiFault, ApiFaultKind, DeliveryOutcome, FaultTarget, Faults, JournalEntry, RequestKind, WebhookFaults,
};

use crate::support::*;

#[tokio::test]
async fn the_next_n_dials_get_500_and_are_not_acted_on() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    sim.set_faults(Faults {
        api: vec![ApiFault::next(ApiFaultKind::InternalError, 2).on(FaultTarget::Dial)],
        ..Faults::default()
    });

    let answers = [
        api.dial(dial_body("+12015550100")).await,
        api.dial(dial_body("+12015550100")).await,
        api.dial(dial_body("+12015550100")).await,
    ];

    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(answers[0].json, example("error.500.internal.json"));
    assert_eq!(sim.calls().len(), 1);
    assert_eq!(sim.count_requests(RequestKind::Dial), 3);
    sim.stop().await;
}

#[tokio::test]
async fn a_rate_limited_answer_has_the_telnyx_body_and_a_retry_after_header() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut fault = ApiFault::next(ApiFaultKind::RateLimited, 1);
    fault.retry_after_secs = 7;
    sim.set_faults(Faults { api: vec![fault], ..Faults::default() });

    let limited = api.dial(dial_body("+12015550100")).await;
    let next = api.dial(dial_body("+12015550100")).await;

    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    assert_eq!(limited.json, example("error.429.rate-limited.docs.json"));
    assert_eq!(next.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn commands_only_faults_leave_dials_alone() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.faults.api = vec![ApiFault::next(ApiFaultKind::InternalError, 1).on(FaultTarget::Commands)];
    })
    .await;
    let api = Api::new(&sim);

    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550100"), "call.answered").await;
    let refused = api.speak(&id, JOKE).await;
    let accepted = api.speak(&id, JOKE).await;

    assert_eq!((refused.status, accepted.status), (500, 200));
    sim.stop().await;
}

#[tokio::test]
async fn a_slow_answer_is_held_past_the_client_timeout_after_the_call_was_placed() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut fault = ApiFault::next(ApiFaultKind::Slow, 1);
    fault.hold_ms = 2_000;
    sim.set_faults(Faults { api: vec![fault], ..Faults::default() });

    let sent = api
        .http
        .post(api.url("/calls"))
        .bearer_auth(KEY)
        .json(&dial_body("+12015550100"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let events = receiver.until("call.initiated").await;

    assert!(sent.expect_err("client gave up").is_timeout());
    assert_eq!(sim.calls().len(), 1, "the dial was acted on");
    assert_eq!(events[0].payload()["call_control_id"], json!(sim.calls()[0].ids.call_control_id));
    sim.stop().await;
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_an_answer_after_acting() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    sim.set_faults(Faults { api: vec![ApiFault::next(ApiFaultKind::Reset, 1)], ..Faults::default() });

    let sent = api.http.post(api.url("/calls")).bearer_auth(KEY).json(&dial_body("+12015550100")).send().await;
    receiver.until("call.initiated").await;

    let error = sent.expect_err("no answer");
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    assert_eq!(sim.calls().len(), 1);
    let request = sim.journal().into_iter().find_map(|entry| match entry {
        JournalEntry::Request(request) => Some(request),
        JournalEntry::Delivery(_) => None,
    });
    let request = request.expect("dial journalled");
    assert_eq!((request.status, request.fault), (None, Some(ApiFaultKind::Reset)));
    sim.stop().await;
}

#[tokio::test]
async fn duplicated_webhooks_arrive_twice_with_the_same_id() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| config.faults.webhooks.duplicate = true).await;
    let api = Api::new(&sim);

    api.dial(dial_body("+12015550101")).await;
    sim.wait_until_idle(WAIT).await.expect("idle");
    let got = receiver.rest();

    assert_eq!(types(&got), ["call.initiated", "call.initiated", "call.hangup", "call.hangup"]);
    assert_eq!(got[0].event_id(), got[1].event_id());
    assert_eq!(got[2].event_id(), got[3].event_id());
    assert!(got.iter().all(|d| d.attempt() == 1));
    sim.stop().await;
}

#[tokio::test]
async fn reordered_webhooks_arrive_in_another_order() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.faults.webhooks = WebhookFaults { reorder: true, reorder_window_ms: 1_000, ..WebhookFaults::default() };
    })
    .await;
    let api = Api::new(&sim);

    api.dial(dial_body("+12015550101")).await;
    sim.wait_until_idle(WAIT).await.expect("idle");

    assert_eq!(types(&receiver.rest()), ["call.hangup", "call.initiated"]);
    sim.stop().await;
}

#[tokio::test]
async fn dropped_event_types_never_reach_the_receiver_and_are_journalled() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.faults.webhooks.drop_event_types = vec!["call.initiated".into()];
    })
    .await;
    let api = Api::new(&sim);

    api.dial(dial_body("+12015550101")).await;
    sim.wait_until_idle(WAIT).await.expect("idle");

    assert_eq!(types(&receiver.rest()), ["call.hangup"]);
    let dropped: Vec<_> = deliveries(&sim).filter(|d| d.outcome == DeliveryOutcome::Dropped).collect();
    assert_eq!((dropped.len(), dropped[0].event_type.as_str(), dropped[0].gave_up), (1, "call.initiated", true));
    sim.stop().await;
}

#[tokio::test]
async fn delayed_webhooks_arrive_no_sooner_than_the_delay() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| config.faults.webhooks.delay_ms = 300).await;
    let api = Api::new(&sim);
    let dialled_at = tokio::time::Instant::now();

    api.dial(dial_body("+12015550100")).await;
    receiver.until("call.initiated").await;

    assert!(dialled_at.elapsed() >= Duration::from_millis(300));
    sim.stop().await;
}

#[tokio::test]
async fn the_admin_endpoints_set_faults_and_behaviours_and_show_journal_and_calls() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let admin = |path: &str| format!("http://{}/sim/{path}", sim.addr());

    let behaviours = api.http.post(admin("behaviours")).json(&json!({ "+12025550111": "reject" })).send().await;
    let faults = api
        .http
        .post(admin("faults"))
        .json(&json!({ "api": [{ "kind": "internal_error", "count": 1, "target": "dial" }] }))
        .send()
        .await;
    let refused = api.dial(dial_body("+12025550111")).await;
    let (_, events) = dial_until(&api, &mut receiver, dial_body("+12025550111"), "call.hangup").await;
    let journal: Value = api.http.get(admin("journal")).send().await.expect("journal").json().await.expect("JSON");
    let calls: Value = api.http.get(admin("calls")).send().await.expect("calls").json().await.expect("JSON");
    let bad = api.http.post(admin("behaviours")).json(&json!({ "555": "busy" })).send().await;

    assert_eq!((behaviours.expect("sent").status().as_u16(), faults.expect("sent").status().as_u16()), (200, 200));
    assert_eq!(refused.status, 500);
    assert_eq!(hangup_reason(events.last().expect("hangup")).0, "call_rejected");
    let requests: Vec<_> = journal.as_array().expect("list").iter().filter(|e| e["entry"] == "request").collect();
    assert_eq!((requests[0]["status"].as_u64(), requests[0]["path"].as_str()), (Some(500), Some("/v2/calls")));
    assert!(
        journal
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["entry"] == "delivery" && e["outcome"]["result"] == "delivered")
    );
    assert_eq!(calls[0]["state"], "ended");
    assert_eq!(bad.expect("sent").status(), 400);
    sim.stop().await;
}

#[tokio::test]
async fn wait_until_idle_reports_what_is_left_when_a_call_stays_up() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    dial_until(&api, &mut receiver, dial_body("+12015550100"), "call.answered").await;
    let waited = sim.wait_until_idle(Duration::from_millis(100)).await;

    match waited {
        Err(telnyx_sim::SimError::NotIdle { activity, .. }) => {
            assert_eq!(activity.live_calls, 1)
        }
        other => panic!("expected NotIdle, got {other:?}"),
    }
    sim.stop().await;
}

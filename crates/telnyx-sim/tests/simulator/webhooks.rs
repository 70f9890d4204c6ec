//! Webhooks: signed, shaped as the official event schemas, echoing client_state, retried
//! with a growing attempt number and given up in the end.

use serde_json::json;
use telnyx_sim::{Behaviour, DeliveryOutcome, test_number};

use crate::support::*;

#[tokio::test]
async fn every_webhook_of_a_told_joke_is_signed_and_matches_its_official_schema() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let id = call_id(&api.dial(dial_body(test_number(Behaviour::Answer))).await);
    let mut deliveries = receiver.until("call.answered").await;
    assert_eq!(api.speak(&id, JOKE).await.status, 200);
    deliveries.extend(receiver.until("call.speak.ended").await);
    assert_eq!(api.act(&id, "hangup", json!({})).await.status, 200);
    deliveries.extend(receiver.until("call.hangup").await);

    let expected = ["call.initiated", "call.answered", "call.speak.started", "call.speak.ended", "call.hangup"];
    assert_eq!(types(&deliveries), expected);
    for delivery in &deliveries {
        assert_signed(delivery, &sim.public_key_base64());
        assert_matches_schema(event_schema(delivery.event_type()), &delivery.json);
        assert_matches_schema("#/components/schemas/Unofficial_CallWebhookEnvelope", &delivery.json);
        assert_eq!(delivery.payload()["call_control_id"], json!(id));
        assert_eq!(delivery.payload()["client_state"], json!(STATE));
        assert_eq!(delivery.payload()["to"], test_number(Behaviour::Answer));
        assert_eq!(delivery.payload()["from"], "+12015550199");
        assert_eq!(delivery.payload()["connection_id"], "7267xxxxxxxxxxxxxx");
        assert_eq!(delivery.json["meta"], json!({ "attempt": 1, "delivered_to": receiver.url }));
    }
    sim.stop().await;
}

#[tokio::test]
async fn event_envelopes_carry_fresh_ids_and_microsecond_utc_times() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    api.dial(dial_body(test_number(Behaviour::Busy))).await;
    let deliveries = receiver.until("call.hangup").await;

    let first = &deliveries[0].json["data"];
    let occurred_at = first["occurred_at"].as_str().expect("occurred_at");
    assert!(chrono::DateTime::parse_from_rfc3339(occurred_at).is_ok());
    assert!(occurred_at.ends_with('Z') && occurred_at.split('.').nth(1).is_some_and(|f| f.len() == 7));
    assert_eq!(first["record_type"], "event");
    assert_ne!(deliveries[0].event_id(), deliveries[1].event_id());
    let payload = deliveries[0].payload();
    assert_eq!((payload["direction"].as_str(), payload["state"].as_str()), (Some("outgoing"), Some("bridging")));
    sim.stop().await;
}

#[tokio::test]
async fn client_state_is_null_until_set_and_the_latest_one_is_echoed() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut dial = dial_body("+12015550100");
    dial.as_object_mut().expect("object").remove("client_state");

    let (id, before) = dial_until(&api, &mut receiver, dial, "call.answered").await;
    api.act(&id, "hangup", json!({ "client_state": STATE })).await;
    let after = receiver.until("call.hangup").await;

    assert!(before.iter().all(|event| event.payload()["client_state"].is_null()));
    assert_eq!(after[0].payload()["client_state"], STATE);
    sim.stop().await;
}

#[tokio::test]
async fn a_webhook_refused_with_500_is_retried_with_a_higher_attempt_the_same_id_and_a_fresh_signature() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    receiver.refuse_next(2);

    api.dial(dial_body("+12015550101")).await;
    let tries = [receiver.next().await, receiver.next().await, receiver.next().await];

    assert_eq!(
        tries.iter().map(|t| (t.event_type(), t.attempt(), t.answered)).collect::<Vec<_>>(),
        [("call.initiated", 1, 500), ("call.initiated", 2, 500), ("call.initiated", 3, 200)]
    );
    assert!(tries.iter().all(|t| t.event_id() == tries[0].event_id()));
    tries.iter().for_each(|t| assert_signed(t, &sim.public_key_base64()));
    assert_eq!(receiver.next().await.event_type(), "call.hangup", "the next event waited for the retries");
    sim.stop().await;
}

#[tokio::test]
async fn a_webhook_refused_every_time_is_given_up_after_the_last_attempt() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.faults.webhooks.give_up_after = Some(2);
    })
    .await;
    let api = Api::new(&sim);
    receiver.refuse_next(usize::MAX);

    api.dial(dial_body("+12015550101")).await;
    sim.wait_until_idle(WAIT).await.expect("idle once given up");

    let attempts: Vec<(String, u32, bool)> =
        deliveries(&sim).map(|d| (d.event_type.clone(), d.attempt, d.gave_up)).collect();
    assert_eq!(
        attempts,
        [
            ("call.initiated".to_owned(), 1, false),
            ("call.initiated".to_owned(), 2, true),
            ("call.hangup".to_owned(), 1, false),
            ("call.hangup".to_owned(), 2, true),
        ]
    );
    assert!(deliveries(&sim).all(|d| d.outcome == DeliveryOutcome::Refused { status: 500 }));
    sim.stop().await;
}

#[tokio::test]
async fn a_dial_s_webhook_retries_policy_sets_how_often_and_when_its_event_type_is_tried_again() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    receiver.refuse_next(usize::MAX);
    let mut body = dial_body("+12015550101");
    body["webhook_retries_policies"] = json!({"call.initiated": {"retries_ms": [100, 300, 600]}});

    api.dial(body).await;
    sim.wait_until_idle(WAIT).await.expect("idle once given up");

    let initiated: Vec<_> = deliveries(&sim).filter(|d| d.event_type == "call.initiated").collect();
    assert_eq!(
        initiated.iter().map(|d| (d.attempt, d.gave_up)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, false), (4, true)],
        "one first attempt and the three retries the policy asked for"
    );
    let pauses: Vec<i64> = initiated.windows(2).map(|pair| (pair[1].at - pair[0].at).num_milliseconds()).collect();
    for (pause, asked) in pauses.iter().zip([100, 300, 600]) {
        assert!(*pause >= asked, "a retry came {pause} ms after the one before, sooner than the {asked} ms asked");
    }
    let hangup_attempts = deliveries(&sim).filter(|d| d.event_type == "call.hangup").count();
    let default = telnyx_sim::Timing::fast().delivery_attempts;
    assert_eq!(hangup_attempts as u32, default, "an event type without a policy keeps the default schedule");
    sim.stop().await;
}

#[test]
fn the_schema_check_rejects_bodies_that_break_the_official_schemas() {
    let mut hangup = example("webhook.call.hangup.json");
    hangup["data"]["payload"]["hangup_cause"] = json!("bored");
    let status = json!({ "data": { "call_control_id": "v3:x", "is_alive": "yes" } });

    let hangup_errors = schema_errors("#/components/schemas/CallHangupEvent", &hangup);
    let status_errors = schema_errors(
        "#/paths/~1calls~1%7Bcall_control_id%7D/get/responses/200/content/application~1json/schema",
        &status,
    );

    assert_eq!(hangup_errors.len(), 1, "{hangup_errors:?}");
    assert!(status_errors.len() >= 3, "missing ids and a non-boolean is_alive: {status_errors:?}");
}

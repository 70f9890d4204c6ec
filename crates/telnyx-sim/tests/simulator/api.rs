//! The simulated API: answers shaped as the official schemas, Telnyx's error bodies and codes,
//! command_id idempotency and the Dial rate limit.

use std::time::Duration;

use serde_json::{Value, json};
use telnyx_sim::{Behaviour, DialLimit, test_number};

use crate::support::*;

#[tokio::test]
async fn dial_speak_hangup_and_status_answers_match_the_official_response_schemas() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let dialled = api.dial(dial_body(test_number(Behaviour::Answer))).await;
    let id = call_id(&dialled);
    let ringing = api.status(&id).await;
    receiver.until("call.answered").await;
    let spoken = api.speak(&id, JOKE).await;
    let hung_up = api.act(&id, "hangup", json!({})).await;
    let ended = api.status(&id).await;

    assert_matches_schema("#/paths/~1calls/post/responses/200/content/application~1json/schema", &dialled.json);
    let data = &dialled.json["data"];
    assert_eq!((data["is_alive"].as_bool(), data["record_type"].as_str()), (Some(false), Some("call")));
    assert_eq!(data["client_state"], STATE);
    assert!(id.starts_with("v3:") && id[3..].bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
    for field in ["call_leg_id", "call_session_id"] {
        assert!(uuid::Uuid::parse_str(data[field].as_str().expect("id")).is_ok(), "{field} is a UUID");
    }
    assert_matches_schema(&action_schema("speak"), &spoken.json);
    assert_matches_schema(&action_schema("hangup"), &hung_up.json);
    assert_eq!(spoken.json, example("command.response.json"));
    let status = "#/paths/~1calls~1%7Bcall_control_id%7D/get/responses/200/content/application~1json/schema";
    assert_matches_schema(status, &ringing.json);
    assert_matches_schema(status, &ended.json);
    assert_eq!(ringing.json["data"]["is_alive"], true);
    assert_eq!(ended.json["data"]["is_alive"], false);
    assert!(ended.json["data"]["end_time"].is_string());
    sim.stop().await;
}

/// The official schema of the 200 answer of call action `action`.
fn action_schema(action: &str) -> String {
    format!(
        "#/paths/~1calls~1%7Bcall_control_id%7D~1actions~1{action}/post/responses/200/content/application~1json/schema"
    )
}

#[tokio::test]
async fn a_wrong_or_missing_key_gets_401_with_telnyx_body() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let body = dial_body(test_number(Behaviour::Answer));

    let wrong = api.http.post(api.url("/calls")).bearer_auth("not-the-key").json(&body).send().await;
    let missing = api.http.post(api.url("/calls")).json(&body).send().await;

    for answer in [wrong, missing] {
        let answer = Api::read(answer.expect("answered")).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json, example("error.401.authentication-failed.json"));
    }
    assert!(sim.calls().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn invalid_dial_bodies_get_422_with_a_pointer_to_the_field() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let with = |field: &str, value: Value| {
        let mut body = dial_body(test_number(Behaviour::Answer));
        body[field] = value;
        body
    };
    let cases = [
        (with("to", json!("0871234567")), "10016", "/to"),
        (with("to", json!(["+12015550100", "not a number"])), "10016", "/to"),
        (with("from", json!("12015550199")), "10016", "/from"),
        (with("connection_id", json!("")), "10015", "/connection_id"),
        (with("connection_id", Value::Null), "10004", "/connection_id"),
        (with("client_state", json!("not base64!")), "10015", "/client_state"),
        (with("timeout_secs", json!(4)), "10033", "/timeout_secs"),
        (with("answering_machine_detection", json!("guess")), "10032", "/answering_machine_detection"),
        (with("webhook_url", json!("ftp://example.com/hook")), "10015", "/webhook_url"),
        (with("time_limit_secs", json!(14_401)), "10033", "/time_limit_secs"),
        (
            with("webhook_retries_policies", json!({"call.hangup": {"retries_ms": [1, 2, 3, 4, 5, 6]}})),
            "10015",
            "/webhook_retries_policies",
        ),
        (
            with("webhook_retries_policies", json!({"call.hangup": {"retries_ms": [30_000, 30_001]}})),
            "10015",
            "/webhook_retries_policies",
        ),
        (with("webhook_retries_policies", json!(["call.hangup"])), "10015", "/webhook_retries_policies"),
    ];

    for (body, code, pointer) in cases {
        let answer = api.dial(body.clone()).await;
        assert_eq!(answer.status, 422, "{body}");
        assert_eq!(answer.error(), (code, Some(pointer)), "{body}");
        assert_matches_schema("#/components/schemas/call-control_Errors", &answer.json);
    }
    assert!(sim.calls().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn a_dial_with_no_webhook_url_anywhere_is_refused_like_an_app_without_one() {
    let sim = telnyx_sim::start(telnyx_sim::SimConfig::local(KEY)).await.expect("starts");
    let api = Api::new(&sim);

    let answer = api.dial(dial_body(test_number(Behaviour::Answer))).await;

    assert_eq!((answer.status, answer.error()), (422, ("10015", Some("/connection_id"))));
    assert_eq!(answer.json, example("error.422.invalid-connection-id.json"));
    sim.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_400() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let answer = api.send(api.http.post(api.url("/calls")).body("to=+12015550100")).await;

    assert_eq!(answer.status, 400);
    assert_eq!(answer.json, example("error.400.invalid-characters.json"));
    sim.stop().await;
}

#[tokio::test]
async fn invalid_speak_bodies_get_422_with_a_pointer_to_the_field() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550100"), "call.answered").await;
    let cases = [
        (json!({ "voice": "Telnyx.KokoroTTS.af" }), "10004", "/payload"),
        (json!({ "payload": JOKE }), "10004", "/voice"),
        (json!({ "payload": "a".repeat(3001), "voice": "female" }), "10033", "/payload"),
        (json!({ "payload": JOKE, "voice": "female", "client_state": "%%%" }), "10015", "/client_state"),
        (json!({ "payload": JOKE, "voice": "female", "payload_type": "html" }), "10032", "/payload_type"),
    ];

    for (body, code, pointer) in cases {
        let answer = api.act(&id, "speak", body.clone()).await;
        assert_eq!((answer.status, answer.error()), (422, (code, Some(pointer))), "{body}");
    }
    assert_eq!(sim.calls()[0].speaks_started, 0);
    sim.stop().await;
}

#[tokio::test]
async fn a_command_after_the_call_ended_gets_90018() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550101"), "call.hangup").await;

    let hangup = api.act(&id, "hangup", json!({})).await;
    let speak = api.speak(&id, JOKE).await;

    assert_eq!((hangup.status, &hangup.json), (422, &example("error.422.call-already-ended.json")));
    assert_eq!((speak.status, speak.error().0), (422, "90018"));
    sim.stop().await;
}

#[tokio::test]
async fn speak_before_answer_gets_90034_and_unknown_calls_get_90015() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, ring_for_a_long_time).await;
    let api = Api::new(&sim);
    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550102"), "call.initiated").await;

    let early = api.speak(&id, JOKE).await;
    let unknown_speak = api.speak("v3:nobody", JOKE).await;
    let unknown_status = api.status("v3:nobody").await;

    assert_eq!((early.status, &early.json), (422, &example("error.422.call-not-answered.json")));
    assert_eq!((unknown_speak.status, &unknown_speak.json), (422, &example("error.422.invalid-call-control-id.json")));
    assert_eq!((unknown_status.status, unknown_status.error().0), (422, "90015"));
    sim.stop().await;
}

#[tokio::test]
async fn a_repeated_command_id_is_answered_the_same_and_has_one_effect() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut dial = dial_body("+12015550100");
    dial["command_id"] = json!("dial-1");
    let first = api.dial(dial.clone()).await;
    let again = api.dial(dial).await;
    let id = call_id(&first);
    receiver.until("call.answered").await;
    let speak = json!({ "payload": JOKE, "voice": "female", "command_id": "speak-1" });

    let spoken = api.act(&id, "speak", speak.clone()).await;
    let respoken = api.act(&id, "speak", speak).await;
    receiver.until("call.speak.ended").await;
    api.act(&id, "hangup", json!({ "command_id": "hangup-1" })).await;
    let hung_up_again = api.act(&id, "hangup", json!({ "command_id": "hangup-1" })).await;
    sim.wait_until_idle(WAIT).await.expect("idle");

    assert_eq!(again.json, first.json);
    assert_eq!(sim.calls().len(), 1);
    assert_eq!((spoken.status, respoken.status, hung_up_again.status), (200, 200, 200));
    assert_eq!(respoken.json, example("command.response.json"));
    assert_eq!(sim.calls()[0].speaks_started, 1);
    assert_eq!(types(&receiver.rest()), ["call.hangup"]);
    sim.stop().await;
}

#[tokio::test]
async fn dials_beyond_the_rolling_window_limit_get_429_90103() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.dial_limit = DialLimit { max_dials: 3, window: Duration::from_secs(5) };
    })
    .await;
    let api = Api::new(&sim);

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(api.dial(dial_body("+12015550101")).await);
    }

    assert_eq!(statuses.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 200, 200, 429]);
    assert_eq!(statuses[3].error().0, "90103");
    assert_eq!(sim.max_dials_in_window(Duration::from_secs(5)), 4);
    assert_eq!(sim.calls().len(), 3);
    sim.stop().await;
}

#[tokio::test]
async fn max_dials_in_window_counts_only_dials_close_together() {
    let receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    api.dial(dial_body("+12015550101")).await;
    api.dial(dial_body("+12015550101")).await;

    assert_eq!(sim.max_dials_in_window(Duration::from_secs(5)), 2);
    assert_eq!(sim.max_dials_in_window(Duration::ZERO), 0);
    sim.stop().await;
}

#[tokio::test]
async fn an_ended_call_is_forgotten_once_its_retention_time_has_passed() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.timing.status_retention = Duration::ZERO;
    })
    .await;
    let api = Api::new(&sim);
    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550101"), "call.hangup").await;

    let status = api.status(&id).await;
    let hangup = api.act(&id, "hangup", json!({})).await;

    assert_eq!((status.status, status.error().0), (422, "90015"));
    assert_eq!((hangup.status, hangup.error().0), (422, "90015"));
    sim.stop().await;
}

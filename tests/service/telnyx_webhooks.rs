//! Reading webhook bodies: the official examples, and the looser shapes real traffic has.

use dialajoke::telnyx::webhook::{EventKind, WebhookError, decode_client_state, parse};
use serde_json::{Value, json};

fn example(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/telnyx/examples/webhook.{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn answered_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&example("call.answered")).expect("example");
    edit(&mut body);
    serde_json::to_vec(&body).expect("serializable")
}

#[test]
fn every_official_example_parses_to_its_event_kind() {
    let cases = [
        ("call.initiated", EventKind::Initiated),
        ("call.answered", EventKind::Answered),
        ("call.speak.started", EventKind::SpeakStarted),
        ("call.speak.ended", EventKind::SpeakEnded { status: Some("completed".into()) }),
        (
            "call.hangup",
            EventKind::Hangup {
                cause: Some("call_rejected".into()),
                source: Some("caller".into()),
                sip_cause: Some("603".into()),
            },
        ),
        ("call.machine.detection.ended", EventKind::MachineDetectionEnded { result: Some("human".into()) }),
    ];
    for (name, kind) in cases {
        let webhook = parse(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(webhook.kind, kind, "{name}");
        assert_eq!(webhook.event_type, name);
    }
}

#[test]
fn an_answered_example_yields_ids_time_state_and_attempt() {
    let webhook = parse(&example("call.answered")).expect("parses");

    assert_eq!(webhook.id, "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0");
    assert_eq!(webhook.call_control_id.as_deref(), Some("v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg"));
    assert_eq!(webhook.call_leg_id.as_deref(), Some("428c31b6-7af4-4bcb-b7f5-5013ef9657c1"));
    assert!(webhook.call_session_id.is_some());
    assert_eq!(webhook.occurred_at.map(|t| t.to_rfc3339()), Some("2018-02-02T22:25:27.521992+00:00".to_owned()));
    assert_eq!(webhook.client_state.as_deref(), Some("aGF2ZSBhIG5pY2UgZGF5ID1d"));
    assert_eq!(webhook.attempt, Some(1));
}

#[test]
fn a_greeting_ended_event_is_read_with_its_result() {
    // No official example exists; this is the schema's example (see machine-greeting-ended.schemas.json).
    let schemas = format!("{}/tests/fixtures/telnyx/machine-greeting-ended.schemas.json", env!("CARGO_MANIFEST_DIR"));
    let schemas: Value = serde_json::from_slice(&std::fs::read(&schemas).expect("schemas")).expect("JSON");
    let data = schemas["components"]["schemas"]["CallMachineGreetingEnded"]["example"].clone();
    let body = serde_json::to_vec(&json!({ "data": data })).expect("serializable");

    let webhook = parse(&body).expect("parses");

    assert_eq!(webhook.kind, EventKind::MachineGreetingEnded { result: Some("beep_detected".into()) });
    assert_eq!(webhook.event_type, "call.machine.greeting.ended");
}

#[test]
fn the_machine_detection_example_has_no_call_control_id() {
    let webhook = parse(&example("call.machine.detection.ended")).expect("parses");

    assert_eq!(webhook.call_control_id, None);
}

#[test]
fn a_null_client_state_and_a_missing_meta_are_accepted() {
    let body = answered_with(|b| {
        b["data"]["payload"]["client_state"] = Value::Null;
        b.as_object_mut().expect("object").remove("meta");
    });

    let webhook = parse(&body).expect("parses");

    assert_eq!(webhook.client_state, None);
    assert_eq!(webhook.attempt, None);
    assert_eq!(webhook.kind, EventKind::Answered);
}

#[test]
fn unknown_fields_seen_in_real_traffic_are_ignored() {
    let body = answered_with(|b| {
        let payload = &mut b["data"]["payload"];
        payload["calling_party_type"] = json!("pstn");
        payload["from_sip_uri"] = json!("+15550001@sip.telnyx.com");
        payload["codec"] = json!("PCMU");
        payload["sampling_rate"] = json!(8000);
        b["data"]["extra"] = json!({"nested": [1, 2]});
    });

    assert_eq!(parse(&body).expect("parses").kind, EventKind::Answered);
}

#[test]
fn an_unknown_event_type_is_other_and_keeps_its_name() {
    let body = answered_with(|b| b["data"]["event_type"] = json!("call.cost"));

    let webhook = parse(&body).expect("parses");

    assert_eq!(webhook.kind, EventKind::Other);
    assert_eq!(webhook.event_type, "call.cost");
}

#[test]
fn a_malformed_occurred_at_is_dropped_not_fatal() {
    let body = answered_with(|b| b["data"]["occurred_at"] = json!("yesterday"));

    assert_eq!(parse(&body).expect("parses").occurred_at, None);
}

#[test]
fn a_missing_event_id_is_an_error_naming_data_id() {
    let body = answered_with(|b| {
        b["data"].as_object_mut().expect("object").remove("id");
    });

    let err = parse(&body).expect_err("id is required");

    assert!(matches!(err, WebhookError::Missing("data.id")));
    assert!(err.to_string().contains("data.id"));
}

#[test]
fn a_non_string_event_type_is_an_error_naming_data_event_type() {
    let body = answered_with(|b| b["data"]["event_type"] = json!(7));

    let err = parse(&body).expect_err("event_type must be text");

    assert!(matches!(err, WebhookError::Malformed { field: "data.event_type", .. }));
}

#[test]
fn a_body_without_data_is_an_error_naming_data() {
    assert!(matches!(parse(br#"{"meta":{"attempt":1}}"#), Err(WebhookError::Missing("data"))));
}

#[test]
fn a_body_that_is_not_json_is_an_error() {
    assert!(matches!(parse(b"event=call.answered"), Err(WebhookError::NotJson(_))));
}

#[test]
fn client_state_decodes_from_base64_text_and_rejects_anything_else() {
    assert_eq!(decode_client_state("aGF2ZSBhIG5pY2UgZGF5ID1d").as_deref(), Some("have a nice day =]"));
    assert_eq!(decode_client_state("not base64!"), None);
    assert_eq!(decode_client_state("//79"), None, "bytes that are not UTF-8");
}

//! What the callee at each test number does, as seen in the webhooks, and per-run overrides.

use serde_json::{Value, json};
use telnyx_sim::{Behaviour, TEST_NUMBERS};

use crate::support::*;

#[tokio::test]
async fn the_answer_number_answers_and_the_callers_hangup_is_a_normal_clearing() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let (id, mut events) = dial_until(&api, &mut receiver, dial_body("+12015550100"), "call.answered").await;
    api.act(&id, "hangup", json!({})).await;
    events.extend(receiver.until("call.hangup").await);

    assert_eq!(types(&events), ["call.initiated", "call.answered", "call.hangup"]);
    assert_eq!(events[1].payload()["state"], "answered");
    assert_eq!(hangup_reason(&events[2]), ("normal_clearing", "caller", "200"));
    assert_eq!(events[2].payload()["state"], "hangup");
    sim.stop().await;
}

#[tokio::test]
async fn the_busy_number_hangs_up_with_user_busy() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let (_, events) = dial_until(&api, &mut receiver, dial_body("+12015550101"), "call.hangup").await;

    assert_eq!(types(&events), ["call.initiated", "call.hangup"]);
    assert_eq!(hangup_reason(&events[1]), ("user_busy", "callee", "486"));
    assert_eq!(events[1].payload()["call_quality_stats"], Value::Null);
    sim.stop().await;
}

#[tokio::test]
async fn the_no_answer_number_times_out_or_reports_no_answer_without_retry_on_timeout() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut without_retry = dial_body("+12015550102");
    without_retry["retry_on_timeout"] = json!(false);

    let (_, timed_out) = dial_until(&api, &mut receiver, dial_body("+12015550102"), "call.hangup").await;
    let (_, unanswered) = dial_until(&api, &mut receiver, without_retry, "call.hangup").await;

    assert_eq!(types(&timed_out), ["call.initiated", "call.hangup"]);
    assert_eq!(hangup_reason(&timed_out[1]).0, "timeout");
    assert_eq!(hangup_reason(&unanswered[1]).0, "no_answer");
    sim.stop().await;
}

#[tokio::test]
async fn the_reject_number_hangs_up_with_call_rejected() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let (_, events) = dial_until(&api, &mut receiver, dial_body("+12015550103"), "call.hangup").await;

    assert_eq!(types(&events), ["call.initiated", "call.hangup"]);
    assert_eq!(hangup_reason(&events[1]), ("call_rejected", "callee", "603"));
    sim.stop().await;
}

#[tokio::test]
async fn the_machine_number_answers_and_detection_reports_a_machine_when_asked_for() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut body = dial_body("+12015550104");
    body["answering_machine_detection"] = json!("detect");

    let (_, events) = dial_until(&api, &mut receiver, body, "call.machine.detection.ended").await;

    assert_eq!(types(&events), ["call.initiated", "call.answered", "call.machine.detection.ended"]);
    assert_eq!(events[2].payload()["result"], "machine");
    assert_matches_schema(event_schema(events[2].event_type()), &events[2].json);
    sim.stop().await;
}

#[tokio::test]
async fn with_greeting_end_detection_the_machine_number_also_reports_the_end_of_its_greeting() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut body = dial_body("+35315550104");
    body["answering_machine_detection"] = json!("greeting_end");

    let (_, events) = dial_until(&api, &mut receiver, body, "call.machine.greeting.ended").await;

    assert_eq!(
        types(&events),
        ["call.initiated", "call.answered", "call.machine.detection.ended", "call.machine.greeting.ended"]
    );
    assert_eq!(events[3].payload()["result"], "beep_detected");
    for event in &events[2..] {
        assert_matches_schema(event_schema(event.event_type()), &event.json);
    }
    sim.stop().await;
}

#[tokio::test]
async fn plain_detection_and_a_human_never_report_a_greeting_end() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut machine = dial_body("+12015550104");
    machine["answering_machine_detection"] = json!("detect");
    let mut human = dial_body("+12015550100");
    human["answering_machine_detection"] = json!("greeting_end");

    for body in [machine, human] {
        let (id, _) = dial_until(&api, &mut receiver, body, "call.machine.detection.ended").await;
        // A speak longer than a greeting: had one been planned, its end would come first.
        api.speak(&id, &JOKE.repeat(3)).await;
        let rest = receiver.until("call.speak.ended").await;
        assert_eq!(types(&rest), ["call.speak.started", "call.speak.ended"]);
        api.act(&id, "hangup", json!({})).await;
        receiver.until("call.hangup").await;
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_human_is_reported_when_detection_is_asked_for_on_the_answer_number() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);
    let mut body = dial_body("+35315550100");
    body["answering_machine_detection"] = json!("premium");

    let (_, events) = dial_until(&api, &mut receiver, body, "call.machine.detection.ended").await;

    assert_eq!(events.last().expect("detection").payload()["result"], "human");
    sim.stop().await;
}

#[tokio::test]
async fn the_hangup_mid_joke_number_hangs_up_during_the_first_speak() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |_| {}).await;
    let api = Api::new(&sim);

    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550105"), "call.answered").await;
    api.speak(&id, JOKE).await;
    let events = receiver.until("call.hangup").await;

    assert_eq!(types(&events), ["call.speak.started", "call.speak.ended", "call.hangup"]);
    assert_eq!(events[1].payload()["status"], "call_hangup");
    assert_eq!(hangup_reason(&events[2]), ("normal_clearing", "callee", "200"));
    sim.stop().await;
}

#[tokio::test]
async fn a_caller_hangup_while_ringing_is_an_originator_cancel() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, ring_for_a_long_time).await;
    let api = Api::new(&sim);

    let (id, _) = dial_until(&api, &mut receiver, dial_body("+12015550102"), "call.initiated").await;
    api.act(&id, "hangup", json!({})).await;
    let events = receiver.until("call.hangup").await;

    assert_eq!(hangup_reason(&events[0]), ("originator_cancel", "caller", "487"));
    sim.stop().await;
}

#[test]
fn every_test_number_is_valid_by_libphonenumber_rules_and_behaviours_cover_the_table() {
    for (number, _) in TEST_NUMBERS {
        let parsed = phonenumber::parse(None, number).expect("parses");
        assert!(phonenumber::is_valid(&parsed), "{number} is valid");
    }
    for behaviour in Behaviour::ALL {
        assert_eq!(TEST_NUMBERS.iter().filter(|(_, b)| *b == behaviour).count(), 2, "{behaviour}");
    }
}

#[tokio::test]
async fn a_number_override_changes_what_the_callee_does() {
    let mut receiver = Receiver::start().await;
    let sim = simulator(&receiver, |config| {
        config.behaviours.insert("+12015550100".into(), Behaviour::Reject);
    })
    .await;
    let api = Api::new(&sim);
    sim.set_behaviour("+12025550123", Behaviour::Busy);

    let (_, overridden) = dial_until(&api, &mut receiver, dial_body("+12015550100"), "call.hangup").await;
    let (_, set_at_run_time) = dial_until(&api, &mut receiver, dial_body("+12025550123"), "call.hangup").await;

    assert_eq!(hangup_reason(overridden.last().expect("hangup")).0, "call_rejected");
    assert_eq!(hangup_reason(set_at_run_time.last().expect("hangup")).0, "user_busy");
    sim.stop().await;
}

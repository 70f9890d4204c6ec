//! Answering machines, end to end against the simulator's machine and answer numbers: the dial
//! asks for detection; a machine gets the joke as a message once its greeting has ended, or is
//! hung up on (and counts as unanswered, so it is retried) when so configured; a person hears the
//! joke as soon as detection says so; with detection off nothing is asked and the joke starts on
//! answer.

use crate::common;

use common::flow::{counts, dial_bodies, run_to_the_end};
use common::{Options, TestApp, spawn_app, spawn_app_with};
use serde_json::Value;
use telnyx_sim::{Behaviour, RequestKind};

fn machine(policy: &str) -> Options {
    Options { env: vec![("DIALAJOKE_ANSWERING_MACHINE", policy.to_owned())], ..Options::default() }
}

fn position(kinds: &[String], kind: &str) -> usize {
    kinds.iter().position(|k| k == kind).unwrap_or_else(|| panic!("{kind} missing from {kinds:?}"))
}

#[tokio::test]
async fn a_machine_gets_the_joke_as_a_message_once_its_greeting_has_ended() {
    let app = spawn_app().await;

    let call = run_to_the_end(&app, Behaviour::Machine).await;

    assert_eq!(call["status"], "completed");
    assert_eq!(dial_bodies(&app)[0]["answering_machine_detection"], "greeting_end");
    let kinds = TestApp::event_kinds(&call);
    let greeting_ended = position(&kinds, "call.machine.greeting.ended");
    assert!(position(&kinds, "awaiting_greeting_end") < greeting_ended, "{kinds:?}");
    assert!(greeting_ended < position(&kinds, "speak_requested"), "{kinds:?}");
    assert_eq!(counts(&app), [1, 1, 1]);
}

#[tokio::test]
async fn with_hang_up_configured_a_machine_hears_no_joke_and_the_call_counts_as_unanswered() {
    let app = spawn_app_with(machine("hangup")).await;

    let call = run_to_the_end(&app, Behaviour::Machine).await;

    assert_eq!(call["status"], "no_answer");
    assert!(call["last_error"].as_str().is_some_and(|e| e.contains("answering machine")), "{call:#}");
    assert_eq!(dial_bodies(&app)[0]["answering_machine_detection"], "detect");
    assert!(TestApp::event_kinds(&call).contains(&"machine_hangup".to_owned()));
    assert_eq!(counts(&app), [1, 0, 1]);
    assert!(call["joke"].as_str().is_some(), "the joke was chosen at answer, just never told");
}

#[tokio::test]
async fn a_machine_hung_up_on_is_retried_like_an_unanswered_call() {
    let mut options = machine("hangup");
    options.env.push(("DIALAJOKE_RETRY_ATTEMPTS", "1".to_owned()));
    options.env.push(("DIALAJOKE_RETRY_SPACING_SECS", "1".to_owned()));
    let app = spawn_app_with(options).await;

    let first = run_to_the_end(&app, Behaviour::Machine).await;
    let retried = common::poll::poll_until("a retry ended", common::FLOW_BOUND, || async {
        let calls = app.all_calls().await;
        let found = calls.iter().find(|c| c["retry_of"] == first["id"] && common::is_final(&c["status"])).cloned();
        found.ok_or(calls)
    })
    .await;

    assert_eq!(first["status"], "no_answer");
    assert_eq!((&retried["status"], &retried["retry"]), (&Value::from("no_answer"), &Value::from(1)));
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 2);
}

#[tokio::test]
async fn a_person_hears_the_joke_as_soon_as_detection_says_human() {
    let app = spawn_app().await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;

    assert_eq!(call["status"], "completed");
    let kinds = TestApp::event_kinds(&call);
    assert!(position(&kinds, "call.machine.detection.ended") < position(&kinds, "speak_requested"), "{kinds:?}");
    assert!(!kinds.contains(&"awaiting_greeting_end".to_owned()));
    assert_eq!(counts(&app), [1, 1, 1]);
}

#[tokio::test]
async fn with_detection_off_nothing_is_asked_and_the_joke_starts_on_answer() {
    let app = spawn_app_with(machine("off")).await;

    let call = run_to_the_end(&app, Behaviour::Machine).await;

    assert_eq!(call["status"], "completed");
    assert!(dial_bodies(&app)[0].get("answering_machine_detection").is_none());
    let kinds = TestApp::event_kinds(&call);
    assert!(!kinds.iter().any(|kind| kind.starts_with("call.machine.")), "{kinds:?}");
    assert_eq!(position(&kinds, "call.answered") + 1, position(&kinds, "speak_requested"));
    assert_eq!(counts(&app), [1, 1, 1]);
}

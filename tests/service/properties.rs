//! Property tests (fuzzing within a bounded number of cases, so they run in every `make test`):
//! the webhook parser and signature check, the scheduling parser and the state machine never
//! panic on any input and keep their promises.

use chrono::{Duration, Utc};
use dialajoke::domain::state::{CallEvent, CallStatus, Transition, transition};
use dialajoke::domain::{PhoneNumber, Schedule, ScheduleInput, ScheduleRules};
use dialajoke::telnyx::signature::{PublicKey, Signer};
use dialajoke::telnyx::webhook;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, ..ProptestConfig::default() }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[-+0-9 :TZ./()a-zA-Z_]{0,40}", Just(String::new())]
}

fn event() -> impl Strategy<Value = CallEvent> {
    prop_oneof![
        Just(CallEvent::Claimed),
        Just(CallEvent::Cancelled),
        Just(CallEvent::Missed),
        Just(CallEvent::DialFailed),
        Just(CallEvent::Initiated),
        Just(CallEvent::Answered),
        Just(CallEvent::SpeakStarted),
        prop::option::of("[a-z_]{0,15}").prop_map(|cause| CallEvent::Hangup { cause }),
    ]
}

/// Position in the life of a call; every terminal state is last.
fn stage(status: CallStatus) -> usize {
    CallStatus::ALL.iter().position(|s| *s == status).expect("listed").min(5)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_webhook_parser_never_panics(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = webhook::parse(&body);
    }

    #[test]
    fn the_webhook_parser_never_panics_on_json_shaped_input(id in text(), kind in text(), state in text()) {
        let body = serde_json::json!({"data": {"id": id, "event_type": kind, "payload": {"client_state": state}}});
        let _ = webhook::parse(body.to_string().as_bytes());
    }

    #[test]
    fn random_headers_never_verify_and_never_panic(signature in text(), timestamp in text(), body in any::<Vec<u8>>()) {
        let key = PublicKey::from_base64(&Signer::from_seed(&[3; 32]).public_key_base64()).expect("valid key");
        prop_assert!(key.verify(Some(&signature), Some(&timestamp), &body, 1_767_225_600).is_err());
    }

    #[test]
    fn a_signed_body_verifies_and_any_changed_byte_does_not(body in prop::collection::vec(any::<u8>(), 1..512), index in any::<prop::sample::Index>(), skew in -300i64..=300) {
        let signer = Signer::from_seed(&[5; 32]);
        let key = PublicKey::from_base64(&signer.public_key_base64()).expect("valid key");
        let now = 1_767_225_600;
        let signature = signer.sign(now + skew, &body);
        let timestamp = (now + skew).to_string();
        prop_assert!(key.verify(Some(&signature), Some(&timestamp), &body, now).is_ok());
        let mut tampered = body.clone();
        let at = index.index(tampered.len());
        tampered[at] ^= 0x01;
        prop_assert!(key.verify(Some(&signature), Some(&timestamp), &tampered, now).is_err());
    }

    #[test]
    fn the_scheduling_parser_never_panics_and_only_accepts_the_window(
        to in prop_oneof![text(), Just("+353 1 234 5678".to_owned())],
        at in prop::option::of(text()),
        date in prop::option::of(prop_oneof![text(), "20[2-3][0-9]-[01][0-9]-[0-3][0-9]"]),
        time in prop::option::of(prop_oneof![text(), "[0-2][0-9]:[0-5][0-9]"]),
        timezone in prop::option::of(prop_oneof![text(), Just("Europe/Dublin".to_owned())]),
    ) {
        let rules = ScheduleRules { now: Utc::now(), horizon: Duration::days(365) };
        let input = ScheduleInput { to: Some(to), at, date, time, timezone };
        if let Ok(schedule) = Schedule::parse(&input, rules) {
            let due = schedule.due_at.instant();
            prop_assert!(due > rules.now && due <= rules.now + rules.horizon);
            prop_assert_eq!(PhoneNumber::parse(schedule.to.as_str()), Ok(schedule.to.clone()));
        }
    }

    #[test]
    fn a_parsed_number_is_e164_and_parses_to_itself(input in prop_oneof![text(), "\\+[1-9][0-9 ]{6,16}"]) {
        if let Ok(number) = PhoneNumber::parse(&input) {
            prop_assert!(number.as_str().starts_with('+'));
            prop_assert!(number.as_str()[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(PhoneNumber::parse(number.as_str()), Ok(number.clone()));
        }
    }

    #[test]
    fn no_sequence_of_events_moves_a_call_backwards_or_out_of_a_final_state(events in prop::collection::vec(event(), 0..30)) {
        let mut status = CallStatus::Scheduled;
        for event in &events {
            if let Transition::To(next) = transition(status, event) {
                prop_assert!(!status.is_terminal(), "{status} moved to {next}");
                prop_assert!(stage(next) > stage(status) || (status == CallStatus::Scheduled && next.is_terminal()));
                status = next;
            }
        }
    }
}

//! A call's history told as a timeline a person can follow on the call's page: the stored
//! history kinds (`dialing`, `call.answered`, `speak_requested` …) become plain words, times are
//! shown in the call's own zone, and the step where the joke was spoken carries its text.

use chrono::SecondsFormat;
use serde::Serialize;

use crate::domain::{Call, HistoryEntry};

/// One step of the timeline.
#[derive(Debug, Serialize)]
pub struct Step {
    /// What happened, in words.
    label: String,
    /// `done`, `warn` or `bad`: how the step is marked (the words say it too).
    tone: &'static str,
    /// The instant, for the `datetime` attribute.
    at: String,
    /// The time in the call's zone, to the second.
    clock: String,
    /// Details worth reading (a hangup cause, an error).
    detail: Option<String>,
    /// The joke, on the step where it was spoken.
    joke: Option<String>,
}

/// The timeline of `call` from its stored history (oldest first).
pub fn steps(call: &Call, history: &[HistoryEntry]) -> Vec<Step> {
    let zone = call.timezone.tz();
    history
        .iter()
        .map(|entry| {
            let (label, tone) = wording(&entry.kind);
            let spoken = entry.kind == "call.speak.started";
            Step {
                label: label.map_or_else(|| entry.kind.clone(), str::to_owned),
                tone,
                at: entry.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                clock: entry.time.with_timezone(&zone).format("%a %-d %b, %H:%M:%S").to_string(),
                // The joke is quoted where it was spoken, not repeated where it was sent.
                detail: entry.detail.clone().filter(|_| entry.kind != "speak_requested"),
                joke: call.joke.clone().filter(|_| spoken),
            }
        })
        .collect()
}

/// The words for a history kind, and its tone; None for kinds this page does not know, which
/// are then shown by their stored name.
fn wording(kind: &str) -> (Option<&'static str>, &'static str) {
    let (label, tone) = match kind {
        "scheduled" => ("Scheduled", "done"),
        "dialing" => ("Dialling started", "done"),
        "dial_accepted" => ("Dialled: Telnyx accepted the call", "done"),
        "call.initiated" => ("Ringing", "done"),
        "call.answered" => ("Answered", "done"),
        "call.machine.detection.ended" => ("Answering machine check finished", "done"),
        "answered_implied" => ("Answered (told by the answering-machine check)", "done"),
        "awaiting_machine_detection" => ("Waiting to learn whether a person or a machine answered", "done"),
        "awaiting_greeting_end" => ("An answering machine: waiting for its greeting to end", "warn"),
        "call.machine.greeting.ended" => ("Answering machine greeting over; leaving the joke", "done"),
        "machine_hangup" => ("An answering machine: hung up without a message", "warn"),
        "retry_scheduled" => ("Retry scheduled", "warn"),
        "deferred" => ("Moved out of the callee's quiet hours", "warn"),
        "caught_up" => ("Made up after the service was down", "warn"),
        "quiet_hours" => ("Not dialled: the callee's quiet hours", "bad"),
        "speak_requested" => ("Joke sent to be spoken", "done"),
        "call.speak.started" => ("Joke spoken", "done"),
        "call.speak.ended" => ("Joke finished", "done"),
        "hangup_requested" => ("Hang-up requested", "done"),
        "call.hangup" => ("Hung up", "done"),
        "cancelled" => ("Cancelled", "warn"),
        "dial_ambiguous" => ("No reply to the dial; waiting for news from Telnyx", "warn"),
        "missed" => ("Missed", "bad"),
        "dial_failed" => ("Dial refused", "bad"),
        "dial_abandoned" => ("Dial given up", "bad"),
        "speak_failed" => ("The joke could not be spoken", "bad"),
        "hangup_failed" => ("Hang-up failed", "bad"),
        _ => return (None, "done"),
    };
    (Some(label), tone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CallId, CallStatus, DueAt, PhoneNumber, Timezone};
    use chrono::{DateTime, Utc};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    fn call_in_los_angeles(joke: &str) -> Call {
        Call {
            id: CallId::new(),
            to: PhoneNumber::parse("+12015550100").expect("valid number"),
            due_at: DueAt::from_stored(at("2026-01-10T20:00:00Z")),
            timezone: Timezone::parse("America/Los_Angeles").expect("known zone"),
            status: CallStatus::Completed,
            attempt: 1,
            call_control_id: None,
            joke: Some(joke.into()),
            last_error: None,
            note: None,
            created_at: at("2026-01-10T19:00:00Z"),
            updated_at: at("2026-01-10T20:00:09Z"),
            rule: None,
            occurrence_at: None,
            retry: None,
        }
    }

    fn entry(kind: &str, time: &str, detail: Option<&str>) -> HistoryEntry {
        HistoryEntry { kind: kind.into(), time: at(time), detail: detail.map(str::to_owned) }
    }

    #[test]
    fn the_joke_is_quoted_where_it_was_spoken_and_times_are_in_the_calls_zone() {
        let call = call_in_los_angeles("Why did the phone wear glasses?");
        let history = [
            entry("speak_requested", "2026-01-10T20:00:02Z", Some("Why did the phone wear glasses?")),
            entry("call.speak.started", "2026-01-10T20:00:03Z", None),
        ];

        let steps = steps(&call, &history);

        assert_eq!((steps[0].joke.as_deref(), steps[0].detail.as_deref()), (None, None));
        assert_eq!(steps[1].label, "Joke spoken");
        assert_eq!(steps[1].joke.as_deref(), Some("Why did the phone wear glasses?"));
        assert_eq!(steps[1].clock, "Sat 10 Jan, 12:00:03");
        assert_eq!(steps[1].at, "2026-01-10T20:00:03Z");
    }

    #[test]
    fn failures_are_marked_and_unknown_kinds_keep_their_name_and_detail() {
        let call = call_in_los_angeles("joke");
        let history = [
            entry("dial_failed", "2026-01-10T20:00:00Z", Some("403 forbidden")),
            entry("call.bridged", "2026-01-10T20:00:01Z", Some("with someone")),
        ];

        let steps = steps(&call, &history);

        assert_eq!((steps[0].label.as_str(), steps[0].tone), ("Dial refused", "bad"));
        assert_eq!(steps[0].detail.as_deref(), Some("403 forbidden"));
        assert_eq!((steps[1].label.as_str(), steps[1].detail.as_deref()), ("call.bridged", Some("with someone")));
    }
}

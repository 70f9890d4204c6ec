//! The call state machine, the only place that decides how a call's status may change.
//!
//! States only move forward: each has a rank, and an event that would move a call to a state of
//! lower or equal rank is recorded but changes nothing. Terminal states never change again.
//! Telnyx's events move a call only if they are about the leg it was dialed on (see [`admits`]).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where a call is in its life. The names are the public API's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Waiting for its due time.
    Scheduled,
    /// Claimed by the timed queue; the dial request is being made.
    Dialing,
    /// Telnyx has started the call; the callee's phone is ringing.
    Ringing,
    /// The callee picked up.
    Answered,
    /// The joke is being spoken.
    Speaking,
    /// The joke was told and the call ended.
    Completed,
    /// The callee's line was busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// The callee declined the call.
    Rejected,
    /// Telnyx refused the dial, or the call ended for another reason.
    Failed,
    /// Cancelled before it was dialed.
    Cancelled,
    /// It fell due while the service was down, beyond the grace period.
    Missed,
}

impl CallStatus {
    /// Every status, in rank order.
    pub const ALL: [CallStatus; 12] = [
        Self::Scheduled,
        Self::Dialing,
        Self::Ringing,
        Self::Answered,
        Self::Speaking,
        Self::Completed,
        Self::Busy,
        Self::NoAnswer,
        Self::Rejected,
        Self::Failed,
        Self::Cancelled,
        Self::Missed,
    ];

    /// The contract name, e.g. `no_answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Dialing => "dialing",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Speaking => "speaking",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
        }
    }

    /// How far along a call is; terminal states share the top rank.
    fn rank(self) -> u8 {
        match self {
            Self::Scheduled => 0,
            Self::Dialing => 1,
            Self::Ringing => 2,
            Self::Answered => 3,
            Self::Speaking => 4,
            _ => 5,
        }
    }

    /// True once nothing can happen to the call any more.
    pub fn is_terminal(self) -> bool {
        self.rank() == 5
    }

    /// True while the call is still waiting and may be cancelled.
    pub fn is_cancellable(self) -> bool {
        self == Self::Scheduled
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not in the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for CallStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Something that happened to a call, from the queue, the API or a Telnyx webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The timed queue claimed it for dialing.
    Claimed,
    /// The person cancelled it.
    Cancelled,
    /// It fell due while the service was down, beyond the grace period.
    Missed,
    /// Telnyx refused or never accepted the dial.
    DialFailed,
    /// `call.initiated`.
    Initiated,
    /// `call.answered`.
    Answered,
    /// `call.speak.started`.
    SpeakStarted,
    /// An answering machine picked up and the service hangs up on machines: nobody heard the joke.
    MachineHungUp,
    /// `call.hangup`, with Telnyx's `hangup_cause`.
    Hangup {
        /// The cause as Telnyx reports it, e.g. `user_busy`.
        cause: Option<String>,
    },
}

/// What an event does to a call in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The call moves to this new status.
    To(CallStatus),
    /// The call is already in the state this event leads to (a replay after a crash): its
    /// follow-up command should be issued again, with the same command id.
    Repeat,
    /// The event is late or out of order: recorded, nothing else.
    Ignore,
}

/// The whole state machine: where `event` takes a call that is `current`.
pub fn transition(current: CallStatus, event: &CallEvent) -> Transition {
    let target = match event {
        CallEvent::Claimed | CallEvent::Cancelled | CallEvent::Missed if current != CallStatus::Scheduled => {
            return Transition::Ignore;
        }
        CallEvent::Claimed => CallStatus::Dialing,
        CallEvent::Cancelled => CallStatus::Cancelled,
        CallEvent::Missed => CallStatus::Missed,
        CallEvent::DialFailed => CallStatus::Failed,
        CallEvent::Initiated => CallStatus::Ringing,
        CallEvent::Answered => CallStatus::Answered,
        CallEvent::SpeakStarted => CallStatus::Speaking,
        CallEvent::MachineHungUp => CallStatus::NoAnswer,
        CallEvent::Hangup { cause } => final_status(current, cause.as_deref()),
    };
    if current.is_terminal() {
        Transition::Ignore
    } else if target == current {
        Transition::Repeat
    } else if target.rank() > current.rank() {
        Transition::To(target)
    } else {
        Transition::Ignore
    }
}

/// Why a Telnyx event that names a call is not about it, so it may not move it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stray {
    /// The call was never dialed, so it has no leg for an event to be about.
    #[error("the call was never dialed (it is {0})")]
    NeverDialed(CallStatus),
    /// The event is about another leg than the one the call is on.
    #[error("the call is on leg {0}")]
    OtherLeg(String),
    /// The event names no leg, and the call's leg is known.
    #[error("it names no leg, and the call is on leg {0}")]
    NoLeg(String),
}

/// Whether an event about the Telnyx leg `event_leg` may move a call that is `status` and on
/// `call_leg`. Only a dialed call has a leg, and once its leg is known only that leg's events
/// are about it. A dial whose answer was lost (an ambiguous dial) has no leg yet: its first event
/// tells which it is.
pub fn admits(status: CallStatus, call_leg: Option<&str>, event_leg: Option<&str>) -> Result<(), Stray> {
    if matches!(status, CallStatus::Scheduled | CallStatus::Cancelled | CallStatus::Missed) {
        return Err(Stray::NeverDialed(status));
    }
    match (call_leg, event_leg) {
        (Some(ours), Some(theirs)) if ours != theirs => Err(Stray::OtherLeg(ours.to_owned())),
        (Some(ours), None) => Err(Stray::NoLeg(ours.to_owned())),
        _ => Ok(()),
    }
}

/// The terminal status a hangup leads to: once answered, the call counts as completed;
/// before that, Telnyx's cause says why nobody heard the joke.
fn final_status(current: CallStatus, cause: Option<&str>) -> CallStatus {
    if current.rank() >= CallStatus::Answered.rank() {
        return CallStatus::Completed;
    }
    match cause {
        Some("user_busy") => CallStatus::Busy,
        Some("timeout" | "no_answer" | "originator_cancel") => CallStatus::NoAnswer,
        Some("call_rejected") => CallStatus::Rejected,
        _ => CallStatus::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallStatus::*;

    #[test]
    fn a_call_walks_forward_through_its_happy_path() {
        assert_eq!(transition(Scheduled, &CallEvent::Claimed), Transition::To(Dialing));
        assert_eq!(transition(Dialing, &CallEvent::Initiated), Transition::To(Ringing));
        assert_eq!(transition(Ringing, &CallEvent::Answered), Transition::To(Answered));
        assert_eq!(transition(Answered, &CallEvent::SpeakStarted), Transition::To(Speaking));
        let hangup = CallEvent::Hangup { cause: Some("normal_clearing".into()) };
        assert_eq!(transition(Speaking, &hangup), Transition::To(Completed));
    }

    #[test]
    fn a_late_answer_after_hangup_changes_nothing() {
        assert_eq!(transition(Busy, &CallEvent::Answered), Transition::Ignore);
    }

    #[test]
    fn an_event_from_the_past_never_moves_a_call_back() {
        assert_eq!(transition(Speaking, &CallEvent::Initiated), Transition::Ignore);
        assert_eq!(transition(Answered, &CallEvent::Initiated), Transition::Ignore);
    }

    #[test]
    fn a_replayed_event_asks_for_its_command_again() {
        assert_eq!(transition(Answered, &CallEvent::Answered), Transition::Repeat);
    }

    #[test]
    fn hangup_causes_before_answer_name_the_outcome() {
        let cases = [("user_busy", Busy), ("timeout", NoAnswer), ("call_rejected", Rejected), ("unspecified", Failed)];
        for (cause, expected) in cases {
            let event = CallEvent::Hangup { cause: Some(cause.into()) };
            assert_eq!(transition(Ringing, &event), Transition::To(expected), "{cause}");
        }
    }

    #[test]
    fn only_scheduled_calls_can_be_claimed_cancelled_or_missed() {
        for event in [CallEvent::Claimed, CallEvent::Cancelled, CallEvent::Missed] {
            assert_eq!(transition(Dialing, &event), Transition::Ignore);
            assert_eq!(transition(Cancelled, &event), Transition::Ignore);
        }
        assert_eq!(transition(Scheduled, &CallEvent::Cancelled), Transition::To(Cancelled));
    }

    #[test]
    fn hanging_up_on_an_answering_machine_counts_as_no_answer_and_a_later_hangup_changes_nothing() {
        assert_eq!(transition(Answered, &CallEvent::MachineHungUp), Transition::To(NoAnswer));
        let hangup = CallEvent::Hangup { cause: Some("normal_clearing".into()) };
        assert_eq!(transition(NoAnswer, &hangup), Transition::Ignore);
    }

    #[test]
    fn events_move_only_a_dialed_call_and_only_on_its_leg() {
        for never_dialed in [Scheduled, Cancelled, Missed] {
            assert_eq!(admits(never_dialed, None, Some("v3:a")), Err(Stray::NeverDialed(never_dialed)));
        }
        assert_eq!(admits(Ringing, Some("v3:a"), Some("v3:a")), Ok(()));
        assert_eq!(admits(Ringing, Some("v3:a"), Some("v3:b")), Err(Stray::OtherLeg("v3:a".into())));
        assert_eq!(admits(Answered, Some("v3:a"), None), Err(Stray::NoLeg("v3:a".into())));
    }

    #[test]
    fn the_first_event_of_a_dial_whose_answer_was_lost_tells_its_leg() {
        assert_eq!(admits(Dialing, None, Some("v3:a")), Ok(()));
    }

    #[test]
    fn status_names_round_trip() {
        for status in CallStatus::ALL {
            assert_eq!(status.as_str().parse::<CallStatus>(), Ok(status));
        }
        assert!("ringing ".parse::<CallStatus>().is_err());
    }
}

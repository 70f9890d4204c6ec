//! Answering machines. The service asks Telnyx to tell humans from machines when it dials; the
//! joke then waits for the verdict (`call.machine.detection.ended`) instead of starting the moment
//! the call is answered. A human (or an unsure verdict) hears it at once. On a machine the joke is
//! either left as a message once the greeting has ended (`call.machine.greeting.ended`, sent when
//! detection runs in `greeting_end` mode), or the service hangs up and the call counts as not
//! answered (and is retried like one).

use std::str::FromStr;

/// What to do when an answering machine picks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachinePolicy {
    /// Wait for the greeting to end, then leave the joke as a message.
    LeaveMessage,
    /// Hang up; the call ends `no_answer`.
    HangUp,
    /// Do not ask for detection (it is billed per call): speak as soon as anyone answers.
    Off,
}

/// The next move after Telnyx's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineStep {
    /// Tell the joke now.
    Speak,
    /// A machine: wait for the end of its greeting, then tell the joke.
    AwaitGreeting,
    /// A machine: hang up without a message.
    HangUp,
}

impl FromStr for MachinePolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "message" => Ok(Self::LeaveMessage),
            "hangup" => Ok(Self::HangUp),
            "off" => Ok(Self::Off),
            other => Err(format!("`{other}` is not message, hangup or off")),
        }
    }
}

impl MachinePolicy {
    /// The Dial's `answering_machine_detection`: `greeting_end` when a message is to be left (it
    /// adds the greeting-ended event), plain `detect` when machines are hung up on.
    pub fn dial_mode(self) -> Option<String> {
        match self {
            Self::LeaveMessage => Some("greeting_end".into()),
            Self::HangUp => Some("detect".into()),
            Self::Off => None,
        }
    }

    /// Whether the joke waits for the verdict after the call is answered.
    pub fn waits_for_verdict(self) -> bool {
        self != Self::Off
    }

    /// What to do on `call.machine.detection.ended` with `result` (human, machine or not_sure).
    pub fn on_verdict(self, result: Option<&str>) -> MachineStep {
        match (result, self) {
            (Some("machine"), Self::LeaveMessage) => MachineStep::AwaitGreeting,
            (Some("machine"), Self::HangUp) => MachineStep::HangUp,
            _ => MachineStep::Speak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humans_and_unsure_verdicts_hear_the_joke_at_once() {
        for policy in [MachinePolicy::LeaveMessage, MachinePolicy::HangUp] {
            assert_eq!(policy.on_verdict(Some("human")), MachineStep::Speak);
            assert_eq!(policy.on_verdict(Some("not_sure")), MachineStep::Speak);
            assert_eq!(policy.on_verdict(None), MachineStep::Speak);
        }
    }

    #[test]
    fn a_machine_gets_a_message_after_its_greeting_or_a_hang_up_as_configured() {
        assert_eq!(MachinePolicy::LeaveMessage.on_verdict(Some("machine")), MachineStep::AwaitGreeting);
        assert_eq!(MachinePolicy::HangUp.on_verdict(Some("machine")), MachineStep::HangUp);
    }

    #[test]
    fn detection_is_asked_for_in_the_mode_each_policy_needs() {
        assert_eq!(MachinePolicy::LeaveMessage.dial_mode().as_deref(), Some("greeting_end"));
        assert_eq!(MachinePolicy::HangUp.dial_mode().as_deref(), Some("detect"));
        assert_eq!(MachinePolicy::Off.dial_mode(), None);
        assert!(!MachinePolicy::Off.waits_for_verdict());
    }
}

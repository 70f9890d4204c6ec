//! How the simulated callee reacts, chosen by the destination number: a built-in table of
//! fictional test numbers, overridable per run (CLI flag, config, admin endpoint).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::lock;

/// What the callee at a number does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Answers after ringing, listens, and waits for the caller to hang up.
    Answer,
    /// The line is busy: hangup `user_busy`, SIP 486.
    Busy,
    /// Rings until the Dial's timeout: hangup `timeout` (`no_answer` with `retry_on_timeout: false`).
    NoAnswer,
    /// Declines the call: hangup `call_rejected`, SIP 603.
    Reject,
    /// A voicemail answers; answering machine detection reports `machine`.
    Machine,
    /// Answers, then hangs up halfway through the first speak.
    HangupMidJoke,
}

impl Behaviour {
    /// Every behaviour, in the order of the documentation table.
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Answer,
        Behaviour::Busy,
        Behaviour::NoAnswer,
        Behaviour::Reject,
        Behaviour::Machine,
        Behaviour::HangupMidJoke,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Answer => "answer",
            Behaviour::Busy => "busy",
            Behaviour::NoAnswer => "no-answer",
            Behaviour::Reject => "reject",
            Behaviour::Machine => "machine",
            Behaviour::HangupMidJoke => "hangup-mid-joke",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A behaviour name that is not one of [`Behaviour::ALL`], or a malformed `NUMBER=BEHAVIOUR`.
#[derive(Debug, thiserror::Error)]
pub enum BehaviourParseError {
    /// The name after `=` is unknown.
    #[error("unknown behaviour {0:?} (expected answer, busy, no-answer, reject, machine or hangup-mid-joke)")]
    UnknownBehaviour(String),
    /// The text is not `NUMBER=BEHAVIOUR` with an E.164 number.
    #[error("expected NUMBER=BEHAVIOUR with an E.164 number, got {0:?}")]
    Malformed(String),
}

impl FromStr for Behaviour {
    type Err = BehaviourParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|behaviour| behaviour.name() == text)
            .ok_or_else(|| BehaviourParseError::UnknownBehaviour(text.to_owned()))
    }
}

/// One `NUMBER=BEHAVIOUR` override, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberBehaviour {
    /// The destination number, E.164.
    pub number: String,
    /// What the callee there does.
    pub behaviour: Behaviour,
}

impl FromStr for NumberBehaviour {
    type Err = BehaviourParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || BehaviourParseError::Malformed(text.to_owned());
        let (number, behaviour) = text.split_once('=').ok_or_else(malformed)?;
        if !is_e164(number) {
            return Err(malformed());
        }
        Ok(Self { number: number.to_owned(), behaviour: behaviour.parse()? })
    }
}

/// Fictional numbers, valid by libphonenumber rules, one per behaviour in two countries.
/// NANP reserves 555-0100..0199 for fiction; the Irish ones mirror that pattern in Dublin.
pub const TEST_NUMBERS: [(&str, Behaviour); 12] = [
    ("+12015550100", Behaviour::Answer),
    ("+12015550101", Behaviour::Busy),
    ("+12015550102", Behaviour::NoAnswer),
    ("+12015550103", Behaviour::Reject),
    ("+12015550104", Behaviour::Machine),
    ("+12015550105", Behaviour::HangupMidJoke),
    ("+35315550100", Behaviour::Answer),
    ("+35315550101", Behaviour::Busy),
    ("+35315550102", Behaviour::NoAnswer),
    ("+35315550103", Behaviour::Reject),
    ("+35315550104", Behaviour::Machine),
    ("+35315550105", Behaviour::HangupMidJoke),
];

/// The test number that shows `behaviour` (its NANP one).
pub fn test_number(behaviour: Behaviour) -> &'static str {
    TEST_NUMBERS
        .iter()
        .find(|(_, listed)| *listed == behaviour)
        .map(|(number, _)| *number)
        .expect("TEST_NUMBERS lists every behaviour")
}

/// Whether `text` has the E.164 shape: `+`, then 7 to 15 digits not starting with 0.
pub(crate) fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The run's behaviour table: overrides first, then [`TEST_NUMBERS`], then `answer`.
#[derive(Debug, Default)]
pub(crate) struct Behaviours {
    overrides: Mutex<HashMap<String, Behaviour>>,
}

impl Behaviours {
    pub(crate) fn new(overrides: &BTreeMap<String, Behaviour>) -> Self {
        let behaviours = Self::default();
        behaviours.set(overrides.iter().map(|(n, b)| (n.clone(), *b)));
        behaviours
    }

    /// What the callee at `destination` does (a SIP URI or unknown number answers).
    pub(crate) fn for_destination(&self, destination: &str) -> Behaviour {
        if let Some(behaviour) = lock(&self.overrides).get(destination) {
            return *behaviour;
        }
        TEST_NUMBERS
            .iter()
            .find(|(number, _)| *number == destination)
            .map_or(Behaviour::Answer, |(_, behaviour)| *behaviour)
    }

    /// Adds or replaces overrides.
    pub(crate) fn set(&self, entries: impl IntoIterator<Item = (String, Behaviour)>) {
        lock(&self.overrides).extend(entries);
    }

    /// The overrides in force.
    pub(crate) fn overrides(&self) -> BTreeMap<String, Behaviour> {
        lock(&self.overrides).iter().map(|(number, behaviour)| (number.clone(), *behaviour)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_override_parses_from_number_equals_behaviour() {
        let parsed: NumberBehaviour = "+353871234567=hangup-mid-joke".parse().expect("parses");

        assert_eq!(parsed.number, "+353871234567");
        assert_eq!(parsed.behaviour, Behaviour::HangupMidJoke);
    }

    #[test]
    fn a_malformed_override_or_unknown_behaviour_is_refused() {
        for text in ["+12015550100", "12015550100=busy", "+12015550100=sulk"] {
            assert!(text.parse::<NumberBehaviour>().is_err(), "{text}");
        }
    }

    #[test]
    fn overrides_win_over_the_table_and_unknown_numbers_answer() {
        let behaviours = Behaviours::default();
        behaviours.set([("+12015550101".to_owned(), Behaviour::Machine)]);

        assert_eq!(behaviours.for_destination("+12015550101"), Behaviour::Machine);
        assert_eq!(behaviours.for_destination("+35315550103"), Behaviour::Reject);
        assert_eq!(behaviours.for_destination("+14155550000"), Behaviour::Answer);
    }
}

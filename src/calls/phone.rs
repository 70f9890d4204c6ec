//! Phone numbers the service may dial: E.164, valid by libphonenumber's rules, and not a
//! premium-rate or shared-cost line (an open scheduling endpoint is a toll-fraud magnet).

use std::fmt;

use phonenumber::{Mode, Type};
use serde::Serialize;

/// Why a string is not a number we will dial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing was entered.
    #[error("enter a phone number")]
    Empty,
    /// The number has no `+` and country code, so we cannot know which country it is in.
    #[error("write the number in international form, starting with + and the country code")]
    NotInternational,
    /// libphonenumber could not read it as a number.
    #[error("this is not a phone number")]
    Unparseable,
    /// It reads as a number but no such number exists in its country's numbering plan.
    #[error("this number does not exist in its country's numbering plan")]
    Invalid,
    /// Premium-rate and shared-cost lines cost the caller money; we never ring them.
    #[error("premium-rate and shared-cost numbers are not allowed")]
    Premium,
}

/// A phone number in E.164 form (`+35312345678`), valid by libphonenumber's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

/// Longest input we even try to parse: E.164 has at most 15 digits, so anything much longer
/// is not a number, however it is spaced.
const MAX_INPUT_LEN: usize = 64;

impl PhoneNumber {
    /// Parses a number written in international form; spaces, dots, dashes and brackets are allowed.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PhoneError::Empty);
        }
        if input.len() > MAX_INPUT_LEN || input.chars().any(char::is_control) {
            return Err(PhoneError::Unparseable);
        }
        if !input.starts_with('+') {
            return Err(PhoneError::NotInternational);
        }
        let parsed = phonenumber::parse(None, input).map_err(|_| PhoneError::Unparseable)?;
        if !parsed.is_valid() {
            return Err(PhoneError::Invalid);
        }
        if matches!(parsed.number_type(&phonenumber::metadata::DATABASE), Type::PremiumRate | Type::SharedCost) {
            return Err(PhoneError::Premium);
        }
        Ok(Self(parsed.format().mode(Mode::E164).to_string()))
    }

    /// A number read back from the store, which only ever holds numbers that passed
    /// [`PhoneNumber::parse`]: only the E.164 shape is checked. libphonenumber's parse is the
    /// most expensive step of listing calls, and the answer cannot have changed since.
    pub fn from_stored(e164: String) -> Option<Self> {
        let digits = e164.strip_prefix('+')?;
        let shaped =
            (2..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
        shaped.then_some(Self(e164))
    }

    /// The ISO 3166 region the number belongs to, e.g. `IE` (None for non-geographic numbers).
    pub fn region(&self) -> Option<String> {
        let parsed = phonenumber::parse(None, &self.0).ok()?;
        parsed.country().id().map(|id| id.as_ref().to_owned())
    }

    /// The E.164 text, e.g. `+35312345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_international_numbers_become_e164() {
        let number = PhoneNumber::parse(" +353 1 234 5678 ").expect("valid Irish number");
        assert_eq!(number.as_str(), "+35312345678");
    }

    #[test]
    fn numbers_without_country_code_are_refused() {
        assert_eq!(PhoneNumber::parse("01 234 5678"), Err(PhoneError::NotInternational));
    }

    #[test]
    fn numbers_outside_the_numbering_plan_are_refused() {
        assert_eq!(PhoneNumber::parse("+44 20 1234"), Err(PhoneError::Invalid));
        assert!(PhoneNumber::parse("+12").is_err());
    }

    #[test]
    fn a_number_knows_its_region() {
        assert_eq!(PhoneNumber::parse("+353 1 234 5678").expect("valid").region().as_deref(), Some("IE"));
        assert_eq!(PhoneNumber::parse("+1 202 555 0142").expect("valid").region().as_deref(), Some("US"));
    }

    #[test]
    fn a_parsed_number_reads_back_from_the_store_unchanged_and_junk_does_not() {
        let number = PhoneNumber::parse("+353 1 234 5678").expect("valid");
        assert_eq!(PhoneNumber::from_stored(number.as_str().to_owned()), Some(number));
        for junk in ["", "+", "35312345678", "+0123", "+1 202 555 0142", "+1234567890123456"] {
            assert_eq!(PhoneNumber::from_stored(junk.to_owned()), None, "{junk:?}");
        }
    }

    #[test]
    fn premium_rate_numbers_are_refused() {
        assert_eq!(PhoneNumber::parse("+1 900 555 0123"), Err(PhoneError::Premium));
    }

    #[test]
    fn empty_and_junk_input_is_refused() {
        assert_eq!(PhoneNumber::parse("   "), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("+353\u{0}12345678"), Err(PhoneError::Unparseable));
        assert_eq!(PhoneNumber::parse("call me maybe"), Err(PhoneError::NotInternational));
    }
}

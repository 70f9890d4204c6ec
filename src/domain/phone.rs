//! Phone numbers the service may dial: E.164, valid by libphonenumber's rules, and not a
//! premium-rate or shared-cost line (an open scheduling endpoint is a toll-fraud magnet). A number
//! also knows whether it is one of the [`NumberType`]s that cost far more than a line or a
//! mobile; whether those may be called is the scheduling policy's decision, not the number's,
//! since the caller id may well be one.

use std::fmt;
use std::str::FromStr;

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

/// Destinations refused unless allowed by name (`DIALAJOKE_ALLOWED_NUMBER_TYPES`): each costs
/// the caller far more than a line or a mobile, which makes them toll fraud's favourite targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberType {
    /// A personal number that forwards wherever its owner likes (UK 070, Irish 0700).
    Personal,
    /// A pager (UK 076).
    Pager,
    /// A satellite phone: Inmarsat (+870) or the global mobile satellite system (+881).
    Satellite,
    /// A number of an international network with no country, such as +800, +882, +883 or +888.
    International,
}

impl NumberType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [NumberType; 4] = [Self::Personal, Self::Pager, Self::Satellite, Self::International];

    /// The name the setting uses, e.g. `satellite`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Pager => "pager",
            Self::Satellite => "satellite",
            Self::International => "international",
        }
    }

    /// What numbers of this type are, in words.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Personal => "personal numbers",
            Self::Pager => "pagers",
            Self::Satellite => "satellite phones",
            Self::International => "international network numbers",
        }
    }
}

impl fmt::Display for NumberType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NumberType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("`{text}` is not a number type: use personal, pager, satellite or international"))
    }
}

/// Country codes of satellite networks (ITU "global mobile satellite" and Inmarsat).
const SATELLITE_CODES: [u16; 2] = [870, 881];

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

    /// Which of the [`NumberType`]s that are refused by default the number is, if any.
    pub fn number_type(&self) -> Option<NumberType> {
        let parsed = phonenumber::parse(None, &self.0).ok()?;
        let code = parsed.code().value();
        if SATELLITE_CODES.contains(&code) {
            return Some(NumberType::Satellite);
        }
        // Numbers of a network rather than a country belong to the pseudo-region "001".
        if parsed.country().id().is_none() {
            return Some(NumberType::International);
        }
        match parsed.number_type(&phonenumber::metadata::DATABASE) {
            Type::PersonalNumber => Some(NumberType::Personal),
            Type::Pager => Some(NumberType::Pager),
            _ => None,
        }
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
    fn satellite_international_personal_and_pager_numbers_know_their_type() {
        let typed = |text: &str| PhoneNumber::parse(text).map(|n| n.number_type()).map_err(|e| format!("{text}: {e}"));
        for (number, expected) in [
            ("+881 6 1234 5678", Some(NumberType::Satellite)),
            ("+870 301 234 567", Some(NumberType::Satellite)),
            ("+882 342 1234", Some(NumberType::International)),
            ("+883 510 012 345", Some(NumberType::International)),
            ("+888 1234 5678 901", Some(NumberType::International)),
            ("+800 1234 5678", Some(NumberType::International)),
            ("+44 70 1234 5678", Some(NumberType::Personal)),
            ("+353 700 123 456", Some(NumberType::Personal)),
            ("+44 76 4012 3456", Some(NumberType::Pager)),
            ("+353 1 234 5678", None),
            ("+353 85 123 4567", None),
            ("+1 202 555 0142", None),
        ] {
            assert_eq!(typed(number), Ok(expected), "{number}");
        }
    }

    #[test]
    fn number_types_are_named_as_the_setting_names_them() {
        for kind in NumberType::ALL {
            assert_eq!(kind.name().parse::<NumberType>(), Ok(kind));
        }
        assert!("mobile".parse::<NumberType>().is_err());
    }

    #[test]
    fn empty_and_junk_input_is_refused() {
        assert_eq!(PhoneNumber::parse("   "), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("+353\u{0}12345678"), Err(PhoneError::Unparseable));
        assert_eq!(PhoneNumber::parse("call me maybe"), Err(PhoneError::NotInternational));
    }
}

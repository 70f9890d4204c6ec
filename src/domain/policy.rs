//! What scheduling allows, for one-off calls and recurring rules alike: how far ahead, which
//! destination countries and number types, how many calls may ring near one another (kept by
//! the store on every write, see [`super::limits`]), and the callee's calling hours. An endpoint
//! that places calls is a toll-fraud magnet, so a rule goes through the same checks as the calls
//! it will make.

use super::hours::CallingHours;
use super::limits::{LimitHit, Limits};
use super::{NumberType, PhoneNumber};

/// Destination countries calls may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Countries {
    /// Anywhere (`*`).
    Any,
    /// Only these ISO 3166 regions, e.g. `IE`, `US`.
    Only(Vec<String>),
}

impl Countries {
    /// True when a number in `region` may be called.
    pub fn allows(&self, region: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::Only(list) => region.is_some_and(|r| list.iter().any(|allowed| allowed == r)),
        }
    }
}

/// What scheduling allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How far ahead calls may be scheduled.
    pub horizon: chrono::Duration,
    /// Where calls may go.
    pub countries: Countries,
    /// The number types refused by default that may be called all the same.
    pub number_types: Vec<NumberType>,
    /// How many calls may ring near one another.
    pub limits: Limits,
    /// When callees may be rung.
    pub hours: CallingHours,
}

/// Why a call or a rule is refused although every field is well formed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The number is in a country calls may not go to.
    #[error("calls to {} are not allowed here; allowed: {allowed}", region.as_deref().unwrap_or("this number"))]
    CountryNotAllowed {
        /// The number's region, when it has one.
        region: Option<String>,
        /// The allowed regions, in words.
        allowed: String,
    },
    /// The number is of a type calls may not go to (satellite, personal…).
    #[error("calls to {} are not allowed here", kind.plural())]
    NumberTypeNotAllowed {
        /// The number's type.
        kind: NumberType,
    },
    /// As many calls as a limit allows already ring near the requested time.
    #[error(transparent)]
    LimitReached(LimitHit),
}

impl Policy {
    /// Refuses destinations outside the allowed countries, and those of a number type that is
    /// refused unless allowed by name.
    pub fn check_destination(&self, to: &PhoneNumber) -> Result<(), PolicyError> {
        self.check_country(to)?;
        match to.number_type() {
            Some(kind) if !self.number_types.contains(&kind) => Err(PolicyError::NumberTypeNotAllowed { kind }),
            _ => Ok(()),
        }
    }

    fn check_country(&self, to: &PhoneNumber) -> Result<(), PolicyError> {
        let region = to.region();
        if self.countries.allows(region.as_deref()) {
            return Ok(());
        }
        let allowed = match &self.countries {
            Countries::Any => "anywhere".to_owned(),
            Countries::Only(list) => list.join(", "),
        };
        Err(PolicyError::CountryNotAllowed { region, allowed })
    }
}

//! What scheduling allows, for one-off calls and recurring rules alike: how far ahead, which
//! destination countries and number types, how many calls per number and in all, and the
//! callee's calling hours.
//! An endpoint that places calls is a toll-fraud magnet, so a rule goes through the same checks
//! as the calls it will make.

use std::time::Duration;

use super::hours::CallingHours;
use super::{NumberType, PhoneNumber};
use crate::config::{Countries, Limits};
use crate::store::{Store, StoreError};

/// What scheduling allows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How far ahead calls may be scheduled.
    pub horizon: chrono::Duration,
    /// Where calls may go.
    pub countries: Countries,
    /// The number types refused by default that may be called all the same.
    pub number_types: Vec<NumberType>,
    /// How many calls may be scheduled.
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
    /// A scheduling limit was reached.
    #[error("too many calls scheduled {scope} in the last {window}: the limit is {limit}")]
    RateLimited {
        /// "to this number" or "in all".
        scope: &'static str,
        /// "hour" or "day".
        window: &'static str,
        /// The limit.
        limit: u64,
        /// The window's length in seconds (when a retry may succeed at the latest).
        window_secs: u64,
    },
    /// The store failed while counting.
    #[error(transparent)]
    Store(#[from] StoreError),
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

    /// Refuses when the calls scheduled in the last hour or day reached a limit: those to `to`
    /// (when given) and those in all, by the store's clock.
    pub async fn check_limits(&self, store: &dyn Store, to: Option<&PhoneNumber>) -> Result<(), PolicyError> {
        let (hour, day) = (Duration::from_secs(3600), Duration::from_secs(86_400));
        let limits = self.limits;
        let number_checks =
            to.map(|number| (Some(number), "to this number", limits.per_number_hour, limits.per_number_day));
        let checks = number_checks.into_iter().chain([(None, "in all", limits.global_hour, limits.global_day)]);
        for (number, scope, per_hour, per_day) in checks {
            if per_hour == 0 && per_day == 0 {
                continue;
            }
            let (in_hour, in_day) = store.count_scheduled(number, hour, day).await?;
            if per_hour > 0 && in_hour >= per_hour {
                return Err(PolicyError::RateLimited { scope, window: "hour", limit: per_hour, window_secs: 3600 });
            }
            if per_day > 0 && in_day >= per_day {
                return Err(PolicyError::RateLimited { scope, window: "day", limit: per_day, window_secs: 86_400 });
            }
        }
        Ok(())
    }
}

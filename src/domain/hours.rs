//! Calling hours: the local times at which a callee may be rung (08:00–21:00 by default); the
//! rest of the day is their quiet hours. Times are the callee's wall clock: the zone the call or
//! its rule was scheduled in, or, for an instant given without a zone, the zone of the number's
//! country when that country has only one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use super::country_zones;
use super::local_time::instant_of;
use super::{PhoneNumber, Timezone};

/// When callees may be rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallingHours {
    /// At any time (no quiet hours).
    Always,
    /// From `start` (inclusive) to `end` (exclusive), local time; `start` after `end` spans midnight.
    Between {
        /// The first allowed minute.
        start: NaiveTime,
        /// The first quiet minute.
        end: NaiveTime,
    },
}

/// What happens to a call found in the callee's quiet hours when it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietAction {
    /// It is moved to the start of the next calling hours.
    Defer,
    /// It is not dialled and ends `missed`, with the reason.
    Mark,
}

/// A calling-hours or quiet-hours setting that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HoursError(String);

impl FromStr for CallingHours {
    type Err = HoursError;

    /// `HH:MM-HH:MM`, or `off` for no quiet hours.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Always);
        }
        let bad = || HoursError(format!("`{text}` is not HH:MM-HH:MM (e.g. 08:00-21:00) or off"));
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(HoursError("the calling hours must not start and end at the same minute; use off".into()));
        }
        Ok(Self::Between { start, end })
    }
}

impl FromStr for QuietAction {
    type Err = HoursError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "defer" => Ok(Self::Defer),
            "mark" => Ok(Self::Mark),
            other => Err(HoursError(format!("`{other}` is neither defer nor mark"))),
        }
    }
}

impl fmt::Display for CallingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("at any time"),
            Self::Between { start, end } => write!(f, "between {} and {}", start.format("%H:%M"), end.format("%H:%M")),
        }
    }
}

impl CallingHours {
    fn allows(&self, local: NaiveTime) -> bool {
        match *self {
            Self::Always => true,
            Self::Between { start, end } if start < end => start <= local && local < end,
            Self::Between { start, end } => local >= start || local < end,
        }
    }

    /// None when `at` is within the calling hours in `zone`; otherwise the instant they next
    /// begin there (by the wall-clock rules of [`super::local_time`]).
    pub fn next_allowed(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let Self::Between { start, .. } = *self else { return None };
        let local = at.with_timezone(&zone).naive_local();
        if self.allows(local.time()) {
            return None;
        }
        // The next start is today's or tomorrow's; a third day covers a start the clocks skipped.
        (0..3)
            .filter_map(|days| instant_of((local.date() + Duration::days(days)).and_time(start), zone))
            .find(|begins| *begins > at)
    }
}

/// The zone whose wall clock counts for a callee: the call's own zone, unless it is the UTC that
/// an instant given without a zone gets; then the number's country's zone when the country has
/// just one, else UTC.
pub fn callee_zone(zone: Timezone, to: &PhoneNumber) -> Tz {
    if zone.tz() != Tz::UTC {
        return zone.tz();
    }
    to.region()
        .and_then(|region| country_zones::single_zone(&region))
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// Why `at` is not a time to ring a callee in `zone`, with the next allowed time.
pub fn quiet_hours_message(hours: &CallingHours, at: DateTime<Utc>, allowed: DateTime<Utc>, zone: Tz) -> String {
    let local = |instant: DateTime<Utc>| instant.with_timezone(&zone).format("%a %d %b %H:%M %Z").to_string();
    format!(
        "{} is in the callee's quiet hours: calls ring {hours} in {}; the next allowed time is {}",
        local(at),
        zone.name(),
        local(allowed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Dublin;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    fn default_hours() -> CallingHours {
        "08:00-21:00".parse().expect("valid")
    }

    #[test]
    fn the_boundary_minutes_fall_on_the_right_side() {
        let hours = default_hours();
        // Dublin is on GMT in January, so local time equals UTC.
        assert_eq!(hours.next_allowed(utc("2026-01-15T07:59:00Z"), Dublin), Some(utc("2026-01-15T08:00:00Z")));
        assert_eq!(hours.next_allowed(utc("2026-01-15T08:00:00Z"), Dublin), None);
        assert_eq!(hours.next_allowed(utc("2026-01-15T20:59:00Z"), Dublin), None);
        assert_eq!(hours.next_allowed(utc("2026-01-15T20:59:59Z"), Dublin), None);
        assert_eq!(hours.next_allowed(utc("2026-01-15T21:00:00Z"), Dublin), Some(utc("2026-01-16T08:00:00Z")));
    }

    #[test]
    fn three_in_the_morning_waits_for_eight_in_the_callees_own_zone() {
        // 03:00 in New York on a summer day is 07:00 UTC; 08:00 EDT is 12:00 UTC.
        let next = default_hours().next_allowed(utc("2026-07-01T07:00:00Z"), New_York);
        assert_eq!(next, Some(utc("2026-07-01T12:00:00Z")));
    }

    #[test]
    fn the_next_start_is_found_across_a_clock_change() {
        // 22:00 EDT on 2026-10-31; the next 08:00 is on 2026-11-01, after fall-back: 13:00 UTC.
        let next = default_hours().next_allowed(utc("2026-11-01T02:00:00Z"), New_York);
        assert_eq!(next, Some(utc("2026-11-01T13:00:00Z")));
    }

    #[test]
    fn calling_hours_may_span_midnight() {
        let night_shift: CallingHours = "22:00-06:00".parse().expect("valid");
        assert_eq!(night_shift.next_allowed(utc("2026-01-15T23:30:00Z"), Dublin), None);
        assert_eq!(night_shift.next_allowed(utc("2026-01-15T05:59:00Z"), Dublin), None);
        assert_eq!(night_shift.next_allowed(utc("2026-01-15T06:00:00Z"), Dublin), Some(utc("2026-01-15T22:00:00Z")));
    }

    #[test]
    fn off_allows_every_minute_and_nonsense_is_refused() {
        assert_eq!(
            "off".parse::<CallingHours>().expect("valid").next_allowed(utc("2026-01-15T03:00:00Z"), Dublin),
            None
        );
        for bad in ["8-21", "08:00", "08:00-08:00", "25:00-26:00"] {
            assert!(bad.parse::<CallingHours>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bare_instant_is_judged_in_the_numbers_country_when_it_has_one_zone() {
        let utc_zone = Timezone::parse("UTC").expect("zone");
        let irish = PhoneNumber::parse("+353 1 555 0100").expect("valid");
        let american = PhoneNumber::parse("+1 201 555 0100").expect("valid");
        assert_eq!(callee_zone(utc_zone, &irish), Dublin);
        assert_eq!(callee_zone(utc_zone, &american), Tz::UTC);
        let chosen = Timezone::parse("America/New_York").expect("zone");
        assert_eq!(callee_zone(chosen, &irish), New_York);
    }
}

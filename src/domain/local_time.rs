//! Wall-clock times that must happen even when the clocks change: a rule's occurrence, the start of
//! a callee's calling hours. A one-off call refuses a local time the clocks skip (the person can
//! pick another); these cannot, so they follow two fixed rules instead:
//! - a local time skipped by spring-forward happens at the end of the gap (the first minute that
//!   exists again, e.g. 02:30 on 2026-03-08 in New York becomes 03:00 EDT);
//! - a local time that happens twice at fall-back happens once, at its first occurrence (01:30 on
//!   2026-11-01 in New York is 01:30 EDT, never again at 01:30 EST).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Longest gap searched for its end: real gaps are an hour or less, and the longest on record
/// (Samoa dropping 30 December 2011) is a day.
const LONGEST_GAP_MINUTES: i64 = 48 * 60;

/// The instant at which the wall-clock time `local` happens in `zone`, by the rules above. None
/// only if the zone's clocks did not come back within two days, which no real zone does.
pub fn instant_of(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => end_of_gap(local, zone),
    }
}

/// The first whole minute after `local` that exists again in `zone`.
fn end_of_gap(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    let minute = local.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(local);
    (1..=LONGEST_GAP_MINUTES)
        .find_map(|step| zone.from_local_datetime(&(minute + Duration::minutes(step))).earliest())
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("valid local time")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    #[test]
    fn an_ordinary_local_time_is_its_only_instant() {
        let at = instant_of(local("2026-07-01 09:30"), chrono_tz::Europe::Dublin);
        assert_eq!(at, Some(utc("2026-07-01T08:30:00Z")));
    }

    #[test]
    fn a_time_skipped_by_spring_forward_happens_at_the_end_of_the_gap() {
        // New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC) on 2026-03-08.
        let new_york = instant_of(local("2026-03-08 02:30"), chrono_tz::America::New_York);
        assert_eq!(new_york, Some(utc("2026-03-08T07:00:00Z")));
        // Dublin: 01:00 GMT jumps to 02:00 IST (01:00 UTC) on 2026-03-29.
        let dublin = instant_of(local("2026-03-29 01:15"), chrono_tz::Europe::Dublin);
        assert_eq!(dublin, Some(utc("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn a_time_repeated_by_fall_back_happens_at_its_first_occurrence() {
        // New York: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST) on 2026-11-01.
        let new_york = instant_of(local("2026-11-01 01:30"), chrono_tz::America::New_York);
        assert_eq!(new_york, Some(utc("2026-11-01T05:30:00Z")));
        // Dublin: 01:30 happens at 00:30 UTC (IST) and again at 01:30 UTC (GMT) on 2026-10-25.
        let dublin = instant_of(local("2026-10-25 01:30"), chrono_tz::Europe::Dublin);
        assert_eq!(dublin, Some(utc("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn a_day_skipped_whole_resumes_on_the_next() {
        // Samoa skipped 30 December 2011 entirely.
        let apia = instant_of(local("2011-12-30 10:00"), chrono_tz::Pacific::Apia);
        assert_eq!(apia, Some(utc("2011-12-30T10:00:00Z")));
    }
}

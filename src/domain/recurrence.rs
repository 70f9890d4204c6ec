//! When a rule rings: every day or every week on one day at a local time, or at the minutes a
//! five-field cron expression names, always on the wall clock of the rule's IANA zone.
//!
//! Every form becomes a cron pattern, and croner (the cron engine tokio-cron-scheduler runs on)
//! finds the matching wall-clock minutes, searching in zone-less time so that it sees each local
//! minute exactly once. Turning a matching minute into an instant is left to
//! [`crate::domain::local_time`], so every rule follows the same DST rules: a skipped local time
//! rings at the end of the gap, a repeated one once, at its first occurrence. croner's own zoned
//! search does that only for fixed times; for patterns like `*/15 * * * *` it skips the gap and
//! rings twice in the repeated hour, which is not what a person asking for a call means.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::domain::local_time::instant_of;

/// The most matches looked at to find one occurrence: a match whose instant was already passed
/// (the second run through a repeated hour) or merged (several minutes of one gap) is stepped over.
const MAX_STEPS: usize = 2048;

/// An instant a rule rings at. It holds whole seconds since the Unix epoch, so it cannot carry a
/// sub-second part: the same occurrence found from two moments a few milliseconds apart is the
/// same value, and so the same (rule, occurrence) key in the store, which is what keeps an
/// occurrence to one call however many housekeeping passes look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Occurrence(i64);

impl Occurrence {
    /// The occurrence at `instant`'s whole second (anything finer is dropped).
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(instant.timestamp())
    }

    /// The instant it rings at.
    pub fn instant(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// How a rule repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrence {
    kind: Kind,
    cron: Cron,
}

/// The form the person chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Every day at a local time.
    Daily(NaiveTime),
    /// Every week on one day at a local time.
    Weekly(Weekday, NaiveTime),
    /// The minutes a five-field cron expression names (minute hour day-of-month month day-of-week).
    Cron(String),
}

/// Why a recurrence cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecurrenceError(pub String);

fn cron_parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build()
}

impl Recurrence {
    /// Every day at `time` (seconds are dropped: calls are made to the minute).
    pub fn daily(time: NaiveTime) -> Self {
        let time = minute_of(time);
        Self::fixed(Kind::Daily(time), format!("{} {} * * *", time.minute(), time.hour()))
    }

    /// Every week on `day` at `time`.
    pub fn weekly(day: Weekday, time: NaiveTime) -> Self {
        let time = minute_of(time);
        let pattern = format!("{} {} * * {}", time.minute(), time.hour(), day.num_days_from_sunday());
        Self::fixed(Kind::Weekly(day, time), pattern)
    }

    /// A five-field cron expression; seconds and years are refused.
    pub fn cron(expression: &str) -> Result<Self, RecurrenceError> {
        let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        let cron = cron_parser().parse(&expression).map_err(|e| RecurrenceError(describe_cron_error(&e)))?;
        Ok(Self { kind: Kind::Cron(expression), cron })
    }

    fn fixed(kind: Kind, pattern: String) -> Self {
        let cron = cron_parser().parse(&pattern).expect("a minute, an hour and a weekday number make a valid pattern");
        Self { kind, cron }
    }

    /// The form chosen.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The cron pattern every form comes down to, e.g. `0 10 * * 0` for Sundays at 10:00.
    pub fn pattern(&self) -> String {
        self.cron.pattern.to_string()
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<Occurrence> {
        let mut wall = whole_second(after.with_timezone(&zone).naive_local());
        for _ in 0..MAX_STEPS {
            wall = self.cron.find_next_occurrence(&wall.and_utc(), false).ok()?.naive_utc();
            let at = Occurrence::at(instant_of(wall, zone)?);
            if at.instant() > after {
                return Some(at);
            }
        }
        None
    }

    /// The last occurrence at or before `until`.
    pub fn latest_until(&self, until: DateTime<Utc>, zone: Tz) -> Option<Occurrence> {
        let mut wall: NaiveDateTime = whole_second(until.with_timezone(&zone).naive_local());
        let mut inclusive = true;
        for _ in 0..MAX_STEPS {
            wall = self.cron.find_previous_occurrence(&wall.and_utc(), inclusive).ok()?.naive_utc();
            inclusive = false;
            let at = Occurrence::at(instant_of(wall, zone)?);
            if at.instant() <= until {
                return Some(at);
            }
        }
        None
    }

    /// The occurrences after `after` up to and including `until`, in order (at most `limit`).
    ///
    /// The work is bounded by the span, not by how rarely the pattern matches: the search looks
    /// only at the span's candidate minutes (at most 1,440 a day), where croner's search for a
    /// next match of a pattern that never matches (`0 0 31 2 *`) walks the calendar up to the
    /// year 5000.
    pub fn between(&self, after: DateTime<Utc>, until: DateTime<Utc>, zone: Tz, limit: usize) -> Vec<Occurrence> {
        let mut found: Vec<Occurrence> = Vec::new();
        for wall in self.candidates(after, until, zone) {
            let Some(at) = instant_of(wall, zone).map(Occurrence::at) else { continue };
            // Before the start, or one of several minutes of a gap already rung at its end.
            if at.instant() <= after || found.last().is_some_and(|last| at <= *last) {
                continue;
            }
            // Wall minutes map to instants in order, so nothing later is in the span either.
            if at.instant() > until || found.len() == limit {
                break;
            }
            found.push(at);
        }
        found
    }

    /// The matching wall-clock minutes of the local days from `after`'s to `until`'s, in order.
    /// Each day of the span is looked at once, and only a matching day's matching minutes are
    /// visited, so there are at most 1,440 candidates per day of the span.
    fn candidates(&self, after: DateTime<Utc>, until: DateTime<Utc>, zone: Tz) -> impl Iterator<Item = NaiveDateTime> {
        let (first, last) = (after.with_timezone(&zone).date_naive(), until.with_timezone(&zone).date_naive());
        let pattern = self.cron.pattern.clone();
        let matches = |matched: Result<bool, croner::errors::CronError>| matched.unwrap_or(false);
        let hours: Vec<u32> = (0..24).filter(|h| matches(pattern.hour_match(*h))).collect();
        let minutes: Vec<u32> = (0..60).filter(|m| matches(pattern.minute_match(*m))).collect();
        first
            .iter_days()
            .take_while(move |day| *day <= last)
            .filter(move |day| {
                matches(pattern.month_match(day.month()))
                    && matches(pattern.day_match(day.year(), day.month(), day.day()))
            })
            .flat_map(move |day| {
                let minutes = minutes.clone();
                hours.clone().into_iter().flat_map(move |hour| {
                    minutes.clone().into_iter().filter_map(move |minute| day.and_hms_opt(hour, minute, 0))
                })
            })
    }

    /// How it is kept in the store: `daily 10:00`, `weekly sun 10:00` or `cron 0 10 * * SUN`.
    pub fn to_stored(&self) -> String {
        match &self.kind {
            Kind::Daily(time) => format!("daily {}", time.format("%H:%M")),
            Kind::Weekly(day, time) => format!("weekly {} {}", day_name(*day), time.format("%H:%M")),
            Kind::Cron(expression) => format!("cron {expression}"),
        }
    }

    /// Reads back what [`Recurrence::to_stored`] wrote.
    pub fn from_stored(text: &str) -> Result<Self, RecurrenceError> {
        let bad = || RecurrenceError(format!("stored recurrence `{text}` is unreadable"));
        let time = |t: &str| NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| bad());
        let (form, rest) = text.split_once(' ').ok_or_else(bad)?;
        match form {
            "daily" => Ok(Self::daily(time(rest)?)),
            "weekly" => {
                let (day, at) = rest.split_once(' ').ok_or_else(bad)?;
                Ok(Self::weekly(day.parse().map_err(|_| bad())?, time(at)?))
            }
            "cron" => Self::cron(rest),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Recurrence {
    /// In words: `every day at 10:00`, `every Sunday at 10:00`, `cron 0 10 * * SUN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Daily(time) => write!(f, "every day at {}", time.format("%H:%M")),
            Kind::Weekly(day, time) => write!(f, "every {} at {}", long_day_name(*day), time.format("%H:%M")),
            Kind::Cron(expression) => write!(f, "cron {expression}"),
        }
    }
}

/// `wall` without its sub-second part, so a search from any moment within a second finds the
/// same occurrences.
fn whole_second(wall: NaiveDateTime) -> NaiveDateTime {
    wall.with_nanosecond(0).unwrap_or(wall)
}

fn minute_of(time: NaiveTime) -> NaiveTime {
    NaiveTime::from_hms_opt(time.hour(), time.minute(), 0).unwrap_or(time)
}

/// The three-letter name the store and the API use, e.g. `sun`.
pub fn day_name(day: Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.num_days_from_monday() as usize]
}

/// The full English name, e.g. `Sunday`.
pub fn long_day_name(day: Weekday) -> &'static str {
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][day.num_days_from_monday() as usize]
}

fn describe_cron_error(error: &croner::errors::CronError) -> String {
    format!(
        "not a cron expression we can use ({error}); give five fields: minute hour day-of-month month day-of-week, e.g. 0 10 * * SUN"
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

    fn occurrence(text: &str) -> Occurrence {
        Occurrence::at(utc(text))
    }

    fn at(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time")
    }

    /// The occurrences in the 24 hours after `from`.
    fn day_of(recurrence: &Recurrence, from: &str, zone: Tz) -> Vec<Occurrence> {
        let from = utc(from);
        recurrence.between(from, from + chrono::Duration::hours(24), zone, 200)
    }

    #[test]
    fn a_daily_time_follows_the_zone_across_spring_forward_in_new_york() {
        let daily = Recurrence::daily(at(10, 0));
        // 10:00 EST on 2026-03-07 is 15:00 UTC; 10:00 EDT on 2026-03-08 is 14:00 UTC.
        assert_eq!(daily.next_after(utc("2026-03-07T12:00:00Z"), New_York), Some(occurrence("2026-03-07T15:00:00Z")));
        assert_eq!(daily.next_after(utc("2026-03-07T15:00:00Z"), New_York), Some(occurrence("2026-03-08T14:00:00Z")));
    }

    #[test]
    fn a_daily_time_in_the_spring_gap_rings_once_at_the_end_of_the_gap() {
        // New York skips 02:00–03:00 on 2026-03-08: 02:30 rings at 03:00 EDT (07:00 UTC).
        let new_york = day_of(&Recurrence::daily(at(2, 30)), "2026-03-08T00:00:00Z", New_York);
        assert_eq!(new_york, [occurrence("2026-03-08T07:00:00Z")]);
        // Dublin skips 01:00–02:00 on 2026-03-29: 01:30 rings at 02:00 IST (01:00 UTC).
        let dublin = day_of(&Recurrence::daily(at(1, 30)), "2026-03-28T23:00:00Z", Dublin);
        assert_eq!(dublin, [occurrence("2026-03-29T01:00:00Z")]);
    }

    #[test]
    fn a_daily_time_in_the_autumn_overlap_rings_once_at_its_first_occurrence() {
        // New York repeats 01:00–02:00 on 2026-11-01: 01:30 rings at 01:30 EDT (05:30 UTC) only.
        let new_york = day_of(&Recurrence::daily(at(1, 30)), "2026-11-01T00:00:00Z", New_York);
        assert_eq!(new_york, [occurrence("2026-11-01T05:30:00Z")]);
        // Dublin repeats 01:00–02:00 on 2026-10-25: 01:30 rings at 01:30 IST (00:30 UTC) only.
        let dublin = day_of(&Recurrence::daily(at(1, 30)), "2026-10-24T22:00:00Z", Dublin);
        assert_eq!(dublin, [occurrence("2026-10-25T00:30:00Z")]);
    }

    #[test]
    fn a_quarter_hourly_cron_merges_the_gap_and_does_not_repeat_the_overlap() {
        let quarterly = Recurrence::cron("*/15 * * * *").expect("valid");
        // Spring: 01:45 EST, then the four quarters of the missing hour all become 03:00 EDT.
        let spring = quarterly.between(utc("2026-03-08T06:30:00Z"), utc("2026-03-08T07:20:00Z"), New_York, 20);
        assert_eq!(
            spring,
            [
                occurrence("2026-03-08T06:45:00Z"),
                occurrence("2026-03-08T07:00:00Z"),
                occurrence("2026-03-08T07:15:00Z")
            ]
        );
        // Autumn: 01:00–01:45 ring once each (EDT); the second run through that hour (EST) is silent.
        let autumn = quarterly.between(utc("2026-11-01T04:50:00Z"), utc("2026-11-01T07:10:00Z"), New_York, 20);
        let expected =
            ["05:00", "05:15", "05:30", "05:45", "07:00"].map(|t| occurrence(&format!("2026-11-01T{t}:00Z")));
        assert_eq!(autumn, expected);
    }

    #[test]
    fn a_weekly_rule_rings_on_its_day_only() {
        let sundays = Recurrence::weekly(Weekday::Sun, at(10, 0));
        // 2026-03-28 is a Saturday; the next Sunday 10:00 in Dublin is after spring-forward (IST).
        assert_eq!(sundays.next_after(utc("2026-03-28T12:00:00Z"), Dublin), Some(occurrence("2026-03-29T09:00:00Z")));
        assert_eq!(sundays.next_after(utc("2026-03-29T09:00:00Z"), Dublin), Some(occurrence("2026-04-05T09:00:00Z")));
    }

    #[test]
    fn the_latest_occurrence_is_found_backwards_including_the_moment_itself() {
        let daily = Recurrence::daily(at(10, 0));
        assert_eq!(daily.latest_until(utc("2026-07-01T09:00:00Z"), Dublin), Some(occurrence("2026-07-01T09:00:00Z")));
        assert_eq!(daily.latest_until(utc("2026-07-01T08:59:00Z"), Dublin), Some(occurrence("2026-06-30T09:00:00Z")));
        // In the second run through New York's repeated hour, 01:30 already happened (in EDT).
        let half_past_one = Recurrence::daily(at(1, 30));
        assert_eq!(
            half_past_one.latest_until(utc("2026-11-01T06:45:00Z"), New_York),
            Some(occurrence("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn every_form_survives_the_store() {
        let forms = [
            Recurrence::daily(at(7, 5)),
            Recurrence::weekly(Weekday::Wed, at(18, 30)),
            Recurrence::cron("0  9 * *  MON-FRI").expect("valid"),
        ];
        for recurrence in forms {
            let stored = recurrence.to_stored();
            assert_eq!(Recurrence::from_stored(&stored).as_ref(), Ok(&recurrence), "{stored}");
        }
    }

    #[test]
    fn occurrences_found_from_moments_with_milliseconds_are_whole_seconds() {
        let daily = Recurrence::daily(at(10, 0));
        let moments = ["2026-07-01T09:00:00.001Z", "2026-07-01T09:00:00.5Z", "2026-07-01T09:00:59.999Z"];
        let latest: Vec<_> = moments.iter().map(|now| daily.latest_until(utc(now), Dublin)).collect();
        assert_eq!(latest, [Some(occurrence("2026-07-01T09:00:00Z")); 3]);
        let next = daily.next_after(utc("2026-07-01T08:59:59.999Z"), Dublin).expect("an occurrence");
        assert_eq!(next.instant(), utc("2026-07-01T09:00:00Z"));
    }

    #[test]
    fn a_pattern_that_never_matches_has_no_occurrence() {
        let thirtieth_of_february = Recurrence::cron("0 10 30 2 *").expect("parses");
        assert_eq!(thirtieth_of_february.next_after(utc("2026-01-01T00:00:00Z"), Dublin), None);
        assert_eq!(thirtieth_of_february.latest_until(utc("2026-01-01T00:00:00Z"), Dublin), None);
    }

    #[test]
    fn a_search_looks_at_no_more_candidate_minutes_than_its_span_holds_however_rarely_the_pattern_matches() {
        let (from, until) = (utc("2026-01-01T00:00:00Z"), utc("2026-12-31T00:00:00Z"));
        // 2026-01-01 to 2026-12-31 is 365 local days in Dublin (GMT in winter).
        let every_minute = Recurrence::cron("* * * * *").expect("valid");
        assert_eq!(every_minute.candidates(from, until, Dublin).count(), 365 * 1440);
        let hourly = Recurrence::cron("0 * * * *").expect("valid");
        assert_eq!(hourly.candidates(from, until, Dublin).count(), 365 * 24);
        let never = Recurrence::cron("0 0 31 2,4,6,9,11 *").expect("parses");
        assert_eq!(never.candidates(from, until, Dublin).count(), 0);
        assert!(never.between(from, until, Dublin, 12_000).is_empty());
    }

    #[test]
    fn a_search_stops_at_its_limit_and_at_the_end_of_its_span() {
        let hourly = Recurrence::cron("0 * * * *").expect("valid");
        let from = utc("2026-01-15T10:30:00Z");
        assert_eq!(hourly.between(from, from + chrono::Duration::days(1), Dublin, 3).len(), 3);
        let until = utc("2026-01-15T13:00:00Z");
        let expected = ["11:00", "12:00", "13:00"].map(|t| occurrence(&format!("2026-01-15T{t}:00Z")));
        assert_eq!(hourly.between(from, until, Dublin, 100), expected);
    }

    #[test]
    fn seconds_years_and_nonsense_are_not_cron_expressions() {
        for bad in ["", "0 0 10 * * SUN", "0 10 * * SUN 2027", "61 10 * * *", "every sunday"] {
            assert!(Recurrence::cron(bad).is_err(), "{bad}");
        }
    }
}

//! Turning what a person typed (a number and a moment) into a [`Schedule`] that can only be valid:
//! a dialable number, a known IANA zone, and an instant in the future within the horizon.
//! Local times that the clock skips (DST gap) are refused; ambiguous ones (DST overlap) take
//! the earlier instant and say so.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::phone::PhoneNumber;

/// One rejected field and why, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The input field's name (`to`, `at`, `date`, `time`, `timezone`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Every field error of one request (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) are invalid", .0.len())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// A single-field error.
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        Self(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// Adds an error for `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
}

/// An IANA time zone such as `Europe/Dublin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(Tz);

impl Timezone {
    /// Parses an IANA zone name; `UTC` is accepted too.
    pub fn parse(name: &str) -> Option<Self> {
        name.trim().parse::<Tz>().ok().map(Self)
    }

    /// The zone's canonical name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The chrono-tz zone, for formatting local times.
    pub fn tz(&self) -> Tz {
        self.0
    }
}

/// The moment a call is due, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueAt(DateTime<Utc>);

impl DueAt {
    /// Wraps an instant read back from the store (it was valid when accepted).
    pub fn from_stored(at: DateTime<Utc>) -> Self {
        Self(at)
    }

    /// An instant the service chose itself: a rule's occurrence, a retry, the end of quiet hours.
    pub fn planned(at: DateTime<Utc>) -> Self {
        Self(at)
    }

    /// The instant.
    pub fn instant(&self) -> DateTime<Utc> {
        self.0
    }
}

/// What a request may carry to say when to call; either `at`, or `date` + `time` + `timezone`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ScheduleInput {
    /// The number to call.
    pub to: Option<String>,
    /// An RFC 3339 instant with an offset.
    pub at: Option<String>,
    /// A local date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// A local time, `HH:MM`.
    pub time: Option<String>,
    /// The IANA zone of `date` and `time` (and the zone `at` is shown in).
    pub timezone: Option<String>,
}

/// A valid request to call a number at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Who to call.
    pub to: PhoneNumber,
    /// When.
    pub due_at: DueAt,
    /// The zone the person thinks in; local times are shown in it.
    pub timezone: Timezone,
    /// Set when the local time was ambiguous and the earlier instant was taken.
    pub note: Option<String>,
}

/// The rules a schedule is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRules {
    /// The current instant.
    pub now: DateTime<Utc>,
    /// How far ahead a call may be scheduled.
    pub horizon: Duration,
}

impl Schedule {
    /// Parses and checks every field, reporting all that are wrong at once.
    pub fn parse(input: &ScheduleInput, rules: ScheduleRules) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors(Vec::new());
        let to = match PhoneNumber::parse(input.to.as_deref().unwrap_or_default()) {
            Ok(number) => Some(number),
            Err(e) => {
                errors.push("to", e.to_string());
                None
            }
        };
        let when = read_moment(input, &mut errors);
        let (Some(to), Some((instant, timezone, note))) = (to, when) else {
            return Err(errors);
        };
        let field = blamed_field(input, instant, timezone, rules);
        check_window(instant, rules).map_err(|message| ValidationErrors::one(field, message))?;
        Ok(Self { to, due_at: DueAt(instant), timezone, note })
    }
}

type Moment = (DateTime<Utc>, Timezone, Option<String>);

/// The field to name when the moment is out of bounds: `at` for an instant; for a local time,
/// `date` when the day itself is out of bounds, else `time`.
fn blamed_field(input: &ScheduleInput, instant: DateTime<Utc>, zone: Timezone, rules: ScheduleRules) -> &'static str {
    if input.at.is_some() {
        return "at";
    }
    let day = |at: DateTime<Utc>| at.with_timezone(&zone.tz()).date_naive();
    let (today, last_day) = (day(rules.now), day(rules.now + rules.horizon));
    if day(instant) < today || day(instant) > last_day { "date" } else { "time" }
}

fn read_moment(input: &ScheduleInput, errors: &mut ValidationErrors) -> Option<Moment> {
    let timezone = match input.timezone.as_deref().map(str::trim) {
        None | Some("") if input.at.is_some() => Some(Timezone(Tz::UTC)),
        None | Some("") => {
            errors.push("timezone", "choose a time zone, e.g. Europe/Dublin");
            None
        }
        Some(name) => Timezone::parse(name).or_else(|| {
            errors.push("timezone", "unknown time zone: use an IANA name such as Europe/Dublin");
            None
        }),
    };
    if let Some(at) = input.at.as_deref() {
        if input.date.is_some() || input.time.is_some() {
            errors.push("at", "give either `at`, or `date` and `time`, not both");
            return None;
        }
        return read_instant(at, errors).zip(timezone).map(|(i, tz)| (i, tz, None));
    }
    let date = read_date(input.date.as_deref(), errors);
    let time = read_time(input.time.as_deref(), errors);
    let (date, time, timezone) = (date?, time?, timezone?);
    local_to_utc(date.and_time(time), timezone).map_err(|message| errors.push("time", message)).ok()
}

fn read_instant(at: &str, errors: &mut ValidationErrors) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(at.trim()) {
        Ok(instant) => Some(instant.with_timezone(&Utc)),
        Err(_) => {
            errors.push("at", "not an RFC 3339 time with an offset, e.g. 2026-12-01T09:30:00+01:00");
            None
        }
    }
}

/// Reads one required local field: a missing value and an unreadable one each get their message.
fn read_local<T, E>(
    value: Option<&str>,
    field: &str,
    (missing, unreadable): (&str, &str),
    parse: impl Fn(&str) -> Result<T, E>,
    errors: &mut ValidationErrors,
) -> Option<T> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        errors.push(field, missing);
        return None;
    };
    parse(text).map_err(|_| errors.push(field, unreadable)).ok()
}

fn read_date(date: Option<&str>, errors: &mut ValidationErrors) -> Option<NaiveDate> {
    let messages = ("choose a date", "not a date: use YYYY-MM-DD, e.g. 2026-12-01");
    read_local(date, "date", messages, |d| NaiveDate::parse_from_str(d, "%Y-%m-%d"), errors)
}

fn read_time(time: Option<&str>, errors: &mut ValidationErrors) -> Option<NaiveTime> {
    let messages = ("choose a time", "not a time: use 24-hour HH:MM, e.g. 09:30");
    let parse = |t: &str| NaiveTime::parse_from_str(t, "%H:%M").or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"));
    read_local(time, "time", messages, parse, errors)
}

/// Resolves a wall-clock time in a zone; the DST gap is refused, the overlap takes the earlier instant.
fn local_to_utc(local: NaiveDateTime, zone: Timezone) -> Result<Moment, String> {
    match zone.0.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok((at.with_timezone(&Utc), zone, None)),
        LocalResult::Ambiguous(first, second) => {
            let note = format!(
                "{local} happens twice in {} (clocks go back); the first one, {}, was taken, not {}",
                zone.name(),
                first.format("%H:%M %Z"),
                second.format("%H:%M %Z"),
            );
            Ok((first.with_timezone(&Utc), zone, Some(note)))
        }
        LocalResult::None => Err(format!(
            "{local} does not exist in {} (the clocks skip it for daylight saving time); choose another time",
            zone.name()
        )),
    }
}

fn check_window(instant: DateTime<Utc>, rules: ScheduleRules) -> Result<(), String> {
    if instant <= rules.now {
        return Err("this time has already passed; choose a time in the future".into());
    }
    if instant > rules.now + rules.horizon {
        return Err(format!("too far ahead: calls can be scheduled at most {} days ahead", rules.horizon.num_days()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScheduleRules {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").expect("fixed now").with_timezone(&Utc);
        ScheduleRules { now, horizon: Duration::days(365) }
    }

    fn local(date: &str, time: &str, zone: &str) -> ScheduleInput {
        ScheduleInput {
            to: Some("+353 1 234 5678".into()),
            date: Some(date.into()),
            time: Some(time.into()),
            timezone: Some(zone.into()),
            at: None,
        }
    }

    fn fields(errors: ValidationErrors) -> Vec<String> {
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_local_time_becomes_the_right_utc_instant() {
        let schedule = Schedule::parse(&local("2026-07-01", "09:30", "Europe/Dublin"), rules()).expect("valid");
        assert_eq!(schedule.due_at.instant().to_rfc3339(), "2026-07-01T08:30:00+00:00");
        assert_eq!(schedule.timezone.name(), "Europe/Dublin");
        assert_eq!(schedule.note, None);
    }

    #[test]
    fn a_time_skipped_by_spring_forward_is_refused_with_a_reason() {
        let error = Schedule::parse(&local("2026-03-29", "01:30", "Europe/Dublin"), rules()).expect_err("gap");
        assert_eq!(fields(error.clone()), ["time"]);
        assert!(error.0[0].message.contains("does not exist"), "{}", error.0[0].message);
    }

    #[test]
    fn an_ambiguous_fall_back_time_takes_the_earlier_instant_and_says_so() {
        let schedule = Schedule::parse(&local("2026-11-01", "01:30", "America/New_York"), rules()).expect("valid");
        assert_eq!(schedule.due_at.instant().to_rfc3339(), "2026-11-01T05:30:00+00:00");
        assert!(schedule.note.as_deref().is_some_and(|n| n.contains("twice")));
    }

    #[test]
    fn an_instant_with_an_offset_is_accepted_and_shown_in_utc_by_default() {
        let input = ScheduleInput {
            to: Some("+353 1 234 5678".into()),
            at: Some("2026-05-01T10:00:00+02:00".into()),
            ..Default::default()
        };
        let schedule = Schedule::parse(&input, rules()).expect("valid");
        assert_eq!(schedule.due_at.instant().to_rfc3339(), "2026-05-01T08:00:00+00:00");
        assert_eq!(schedule.timezone.name(), "UTC");
    }

    #[test]
    fn past_and_too_distant_times_are_refused() {
        let earlier_today = Schedule::parse(&local("2026-03-01", "09:00", "UTC"), rules()).expect_err("past");
        assert_eq!(fields(earlier_today), ["time"]);
        let past = Schedule::parse(&local("2026-02-28", "09:00", "UTC"), rules()).expect_err("past");
        assert_eq!(fields(past), ["date"]);
        let far = Schedule::parse(&local("2027-06-01", "09:00", "UTC"), rules()).expect_err("beyond horizon");
        assert_eq!(fields(far), ["date"]);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let input = ScheduleInput {
            to: Some("12".into()),
            date: Some("2026-13-01".into()),
            time: Some("25:00".into()),
            timezone: Some("Mars/Olympus".into()),
            at: None,
        };
        let error = Schedule::parse(&input, rules()).expect_err("all wrong");
        assert_eq!(fields(error), ["to", "timezone", "date", "time"]);
    }

    #[test]
    fn at_and_local_fields_together_are_refused() {
        let mut input = local("2026-07-01", "09:30", "UTC");
        input.at = Some("2026-07-01T09:30:00Z".into());
        assert_eq!(fields(Schedule::parse(&input, rules()).expect_err("both")), ["at"]);
    }
}

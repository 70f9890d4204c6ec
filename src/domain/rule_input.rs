//! Turning what a person typed into a [`NewRule`] that can only be valid: a dialable number, a
//! known IANA zone, a recurrence (`daily` at a time, `weekly` on a day at a time, or a `cron`
//! expression) and a catch-up policy. Every wrong field is reported at once, by name. Fields the
//! chosen `repeat` does not use (a `cron` sent with `daily`) are ignored, so the page can post
//! its whole form.

use chrono::{Duration, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use super::{CatchUp, NewRule, Recurrence, RuleId};
use crate::domain::{PhoneNumber, Timezone, ValidationErrors};

/// The fields a rule request may carry.
pub const FIELDS: [&str; 8] = ["to", "timezone", "repeat", "time", "day", "cron", "catch_up", "catch_up_minutes"];

/// Longest catch-up window: a day, after which a "make-up" call is just a surprise.
const MAX_CATCH_UP_MINUTES: i64 = 24 * 60;

/// What a rule request may carry, as text.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RuleInput {
    /// The number to call.
    pub to: Option<String>,
    /// The IANA zone whose wall clock the rule follows.
    pub timezone: Option<String>,
    /// `daily`, `weekly` or `cron`.
    pub repeat: Option<String>,
    /// For daily and weekly rules: the local time, `HH:MM`.
    pub time: Option<String>,
    /// For weekly rules: the day, e.g. `sunday` or `sun`.
    pub day: Option<String>,
    /// For cron rules: five fields, minute hour day-of-month month day-of-week.
    pub cron: Option<String>,
    /// `once` (the default: make up the latest missed call) or `skip`.
    pub catch_up: Option<String>,
    /// For `once`: how late, in minutes, a missed call may still be made up (default 60).
    pub catch_up_minutes: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Parses and checks every field, reporting all that are wrong at once.
pub fn parse(input: &RuleInput) -> Result<NewRule, ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let to =
        PhoneNumber::parse(input.to.as_deref().unwrap_or_default()).map_err(|e| errors.push("to", e.to_string())).ok();
    let timezone = match given(&input.timezone) {
        None => {
            errors.push("timezone", "choose a time zone, e.g. Europe/Dublin");
            None
        }
        Some(name) => Timezone::parse(name).or_else(|| {
            errors.push("timezone", "unknown time zone: use an IANA name such as Europe/Dublin");
            None
        }),
    };
    let recurrence = read_recurrence(input, &mut errors);
    let catch_up = read_catch_up(input, &mut errors);
    match (to, timezone, recurrence, catch_up) {
        (Some(to), Some(timezone), Some(recurrence), Some(catch_up)) if errors.0.is_empty() => {
            Ok(NewRule { id: RuleId::new(), to, timezone, recurrence, catch_up })
        }
        _ => Err(errors),
    }
}

fn read_recurrence(input: &RuleInput, errors: &mut ValidationErrors) -> Option<Recurrence> {
    match given(&input.repeat).map(str::to_ascii_lowercase).as_deref() {
        Some("daily") => read_time(input, errors).map(Recurrence::daily),
        Some("weekly") => {
            let day = read_day(input, errors);
            let time = read_time(input, errors);
            Some(Recurrence::weekly(day?, time?))
        }
        Some("cron") => match given(&input.cron) {
            None => {
                errors.push("cron", "give a cron expression, e.g. 0 10 * * SUN for Sundays at 10:00");
                None
            }
            Some(expression) => Recurrence::cron(expression).map_err(|e| errors.push("cron", e.to_string())).ok(),
        },
        None => {
            errors.push("repeat", "choose how the call repeats: daily, weekly or cron");
            None
        }
        Some(_) => {
            errors.push("repeat", "must be daily, weekly or cron");
            None
        }
    }
}

fn read_time(input: &RuleInput, errors: &mut ValidationErrors) -> Option<NaiveTime> {
    let Some(text) = given(&input.time) else {
        errors.push("time", "choose a time");
        return None;
    };
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| errors.push("time", "not a time: use 24-hour HH:MM, e.g. 10:00"))
        .ok()
}

fn read_day(input: &RuleInput, errors: &mut ValidationErrors) -> Option<Weekday> {
    let Some(text) = given(&input.day) else {
        errors.push("day", "choose a day of the week");
        return None;
    };
    text.parse::<Weekday>().map_err(|_| errors.push("day", "not a day of the week: use e.g. sunday or sun")).ok()
}

fn read_catch_up(input: &RuleInput, errors: &mut ValidationErrors) -> Option<CatchUp> {
    match given(&input.catch_up).map(str::to_ascii_lowercase).as_deref() {
        Some("skip") => Some(CatchUp::Skip),
        None | Some("once") => match given(&input.catch_up_minutes) {
            None => Some(CatchUp::DEFAULT),
            Some(text) => match text.parse::<i64>() {
                Ok(minutes) if (1..=MAX_CATCH_UP_MINUTES).contains(&minutes) => {
                    Some(CatchUp::Once { within: Duration::minutes(minutes) })
                }
                _ => {
                    errors.push(
                        "catch_up_minutes",
                        format!("must be a whole number of minutes from 1 to {MAX_CATCH_UP_MINUTES}"),
                    );
                    None
                }
            },
        },
        Some(_) => {
            errors.push("catch_up", "must be once or skip");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly() -> RuleInput {
        RuleInput {
            to: Some("+353 1 555 0100".into()),
            timezone: Some("Europe/Dublin".into()),
            repeat: Some("weekly".into()),
            time: Some("10:00".into()),
            day: Some("Sunday".into()),
            ..RuleInput::default()
        }
    }

    fn fields(errors: ValidationErrors) -> Vec<String> {
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_weekly_rule_with_defaults_is_accepted() {
        let rule = parse(&weekly()).expect("valid");
        assert_eq!(rule.recurrence.to_stored(), "weekly sun 10:00");
        assert_eq!(rule.catch_up, CatchUp::DEFAULT);
        assert_eq!(rule.to.as_str(), "+35315550100");
    }

    #[test]
    fn a_cron_rule_ignores_the_daily_fields_and_takes_its_catch_up() {
        let input = RuleInput {
            repeat: Some("cron".into()),
            cron: Some("30 9 * * MON-FRI".into()),
            day: Some("not read".into()),
            catch_up: Some("skip".into()),
            ..weekly()
        };
        let rule = parse(&input).expect("valid");
        assert_eq!(rule.recurrence.to_stored(), "cron 30 9 * * MON-FRI");
        assert_eq!(rule.catch_up, CatchUp::Skip);
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let input = RuleInput {
            to: Some("12".into()),
            timezone: Some("Mars/Olympus".into()),
            day: Some("someday".into()),
            time: Some("25:00".into()),
            catch_up_minutes: Some("0".into()),
            ..weekly()
        };
        assert_eq!(
            fields(parse(&input).expect_err("all wrong")),
            ["to", "timezone", "day", "time", "catch_up_minutes"]
        );
    }

    #[test]
    fn a_missing_repeat_or_a_bad_cron_is_named() {
        let missing = RuleInput { repeat: None, ..weekly() };
        assert_eq!(fields(parse(&missing).expect_err("no repeat")), ["repeat"]);
        let bad = RuleInput { repeat: Some("cron".into()), cron: Some("0 0 10 * * SUN".into()), ..weekly() };
        assert_eq!(fields(parse(&bad).expect_err("seconds")), ["cron"]);
    }
}

//! The rules service: what the web layer asks about recurring rules (create, list, look up,
//! pause, resume, delete). A new rule passes the checks its calls would: allowed country, calling
//! hours (every occurrence in the next year), a rhythm within the per-number limits, the global
//! limits, and a first occurrence within the horizon. It then gets its first call at once.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::rule_checks::CheckPool;
use crate::app::materialiser::{Made, Materialiser};
use crate::domain::ValidationErrors;
use crate::domain::hours::{CallingHours, callee_zone, quiet_hours_message};
use crate::domain::policy::{Policy, PolicyError};
use crate::domain::rule_input::{self, RuleInput};
use crate::domain::{Kind, NewRule, Occurrence, Rule, RuleId, RuleStatus};
use crate::store::{Store, StoreError};

/// How far ahead a rule's occurrences are checked against the calling hours.
const HOURS_CHECKED: Duration = Duration::days(366);
/// How far ahead a rule's rhythm is checked against the per-number limits (a week and a day, so
/// weekly patterns and every day's window are seen whole).
const RHYTHM_CHECKED: Duration = Duration::days(8);
/// Most occurrences looked at in either check (a rule ringing every minute has 11,520 in 8 days).
const MAX_CHECKED: usize = 12_000;

/// Why a rule request failed.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Some fields are wrong.
    #[error("invalid request")]
    Invalid(ValidationErrors),
    /// The destination or the number of calls is not allowed.
    #[error(transparent)]
    Refused(#[from] PolicyError),
    /// No such rule.
    #[error("no recurring call with this id")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rules service; cheap to clone.
#[derive(Clone)]
pub struct RuleService {
    store: Arc<dyn Store>,
    materialiser: Materialiser,
    policy: Policy,
    checks: CheckPool,
}

impl RuleService {
    /// A service over `store` whose rules get their calls from `materialiser` and have their
    /// occurrences checked in `checks`.
    pub fn new(store: Arc<dyn Store>, materialiser: Materialiser, policy: Policy, checks: CheckPool) -> Self {
        Self { store, materialiser, policy, checks }
    }

    /// Checks and stores a rule, and makes its first call.
    #[tracing::instrument(skip(self, input))]
    pub async fn create(&self, input: &RuleInput) -> Result<Rule, RuleError> {
        let rule = rule_input::parse(input).map_err(RuleError::Invalid)?;
        // The store's clock starts the rule's cursor and decides when its calls are due.
        let now = self.store.now().await?;
        self.policy.check_destination(&rule.to)?;
        let (service, checked) = (self.clone(), rule.clone());
        self.checks.run(move || service.check_occurrences(&checked, now)).await.map_err(RuleError::Invalid)?;
        let stored = self.store.insert_rule(&rule, now).await?;
        if let Made::Refused(hit) = self.materialiser.materialise(&stored, now).await? {
            // A rule whose very first call breaks a limit is refused, not kept to skip it.
            self.store.delete_rule(stored.id).await?;
            return Err(RuleError::Refused(PolicyError::LimitReached(hit)));
        }
        Ok(self.store.get_rule(stored.id).await?.unwrap_or(stored))
    }

    /// Refuses a rule whose first occurrence is beyond the horizon, one of whose occurrences falls
    /// in the callee's quiet hours, or that would ring more often than the per-number limits.
    fn check_occurrences(&self, rule: &NewRule, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let field = match rule.recurrence.kind() {
            Kind::Cron(_) => "cron",
            Kind::Daily(_) | Kind::Weekly(..) => "time",
        };
        let zone = rule.timezone.tz();
        let upcoming: Vec<DateTime<Utc>> = rule
            .recurrence
            .between(now, now + HOURS_CHECKED, zone, MAX_CHECKED)
            .into_iter()
            .map(Occurrence::instant)
            .collect();
        match upcoming.first() {
            Some(first) if *first <= now + self.policy.horizon => {}
            _ => {
                // Occurrences are only looked for a year ahead, whatever the horizon.
                let days = self.policy.horizon.min(HOURS_CHECKED).num_days();
                return Err(ValidationErrors::one(
                    field,
                    format!("this rule would not ring within the next {days} days"),
                ));
            }
        }
        let callee = callee_zone(rule.timezone, &rule.to);
        let hours = &self.policy.hours;
        if let Some((at, allowed)) = upcoming.iter().find_map(|at| hours.next_allowed(*at, callee).map(|a| (*at, a))) {
            return Err(ValidationErrors::one(field, quiet_hours_message(hours, at, allowed, callee)));
        }
        let soon: Vec<_> = upcoming.into_iter().take_while(|at| *at <= now + RHYTHM_CHECKED).collect();
        let limits = self.policy.limits;
        for (window, name, limit) in [
            (Duration::hours(1), "an hour", limits.per_number_hour),
            (Duration::days(1), "a day", limits.per_number_day),
        ] {
            let most = most_in_any_window(&soon, window);
            if limit > 0 && most as u64 > limit {
                let message = format!(
                    "this rule would ring the number {most} times in {name}; at most {limit} calls in {name} are allowed to one number"
                );
                return Err(ValidationErrors::one(field, message));
            }
        }
        Ok(())
    }

    /// When callees may be rung, for the page to say.
    pub fn calling_hours(&self) -> CallingHours {
        self.policy.hours
    }

    /// Every rule, oldest first.
    pub async fn list(&self) -> Result<Vec<Rule>, StoreError> {
        self.store.list_rules().await
    }

    /// One rule.
    pub async fn get(&self, id: RuleId) -> Result<Rule, RuleError> {
        self.store.get_rule(id).await?.ok_or(RuleError::NotFound)
    }

    /// Stops a rule making calls and cancels its waiting call; pausing a paused rule changes nothing.
    #[tracing::instrument(skip(self))]
    pub async fn pause(&self, id: RuleId) -> Result<Rule, RuleError> {
        self.store.set_rule_status(id, RuleStatus::Paused, self.store.now().await?).await?.ok_or(RuleError::NotFound)
    }

    /// Lets a paused rule make calls again, from its next occurrence after now.
    #[tracing::instrument(skip(self))]
    pub async fn resume(&self, id: RuleId) -> Result<Rule, RuleError> {
        let now = self.store.now().await?;
        self.store.set_rule_status(id, RuleStatus::Active, now).await?.ok_or(RuleError::NotFound)?;
        self.materialiser.pass(now).await?;
        self.get(id).await
    }

    /// Deletes a rule and cancels its waiting call; the calls it made stay in the history.
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, id: RuleId) -> Result<(), RuleError> {
        if self.store.delete_rule(id).await? { Ok(()) } else { Err(RuleError::NotFound) }
    }
}

/// The most instants of the sorted `times` that fall in any window of length `window`.
fn most_in_any_window(times: &[DateTime<Utc>], window: Duration) -> usize {
    let mut end = 0;
    let mut most = 0;
    for (start, at) in times.iter().enumerate() {
        while end < times.len() && times[end] < *at + window {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    #[test]
    fn the_busiest_window_is_counted_whatever_it_starts_with() {
        let times = ["10:00", "10:20", "10:59", "11:00", "11:30", "13:00"].map(|t| utc(&format!("2026-01-15T{t}:00Z")));
        assert_eq!(most_in_any_window(&times, Duration::hours(1)), 3);
        assert_eq!(most_in_any_window(&times, Duration::days(1)), 6);
        assert_eq!(most_in_any_window(&[], Duration::hours(1)), 0);
    }
}

//! How many calls may ring near one another: to one number, and in all, within an hour and
//! within a day. Limits count calls by when they ring, not by when they were asked for, so a
//! burst of requests, forty rules at one minute or a morning of deferred calls cannot pile
//! calls onto one instant. The store enforces them on every write that sets when a call rings
//! (a new call, a rule's occurrence, a retry, a move out of quiet hours), in the same atomic step
//! as the write, so racing requests cannot overshoot them.

use std::fmt;

/// Limits on calls ringing near one another; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Calls one number may get within an hour.
    pub per_number_hour: u64,
    /// Calls one number may get within a day.
    pub per_number_day: u64,
    /// Calls in all within an hour.
    pub global_hour: u64,
    /// Calls in all within a day.
    pub global_day: u64,
}

/// Whom a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The calls to one number.
    Number,
    /// Every call.
    All,
}

/// How far apart calls count as near one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// An hour.
    Hour,
    /// A day.
    Day,
}

impl Window {
    /// The window's length.
    pub fn length(self) -> chrono::Duration {
        match self {
            Self::Hour => chrono::Duration::hours(1),
            Self::Day => chrono::Duration::days(1),
        }
    }

    /// The window in words, as in "within an hour".
    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "an hour",
            Self::Day => "a day",
        }
    }
}

/// One limit that is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Whom it counts.
    pub scope: Scope,
    /// How near.
    pub window: Window,
    /// How many calls may ring within the window of one another.
    pub limit: u64,
}

impl Limits {
    /// No limits at all.
    pub const NONE: Self = Self { per_number_hour: 0, per_number_day: 0, global_hour: 0, global_day: 0 };

    /// The limits that are on, those for one number first.
    pub fn bounds(&self) -> impl Iterator<Item = Bound> {
        [
            (Scope::Number, Window::Hour, self.per_number_hour),
            (Scope::Number, Window::Day, self.per_number_day),
            (Scope::All, Window::Hour, self.global_hour),
            (Scope::All, Window::Day, self.global_day),
        ]
        .into_iter()
        .filter(|(_, _, limit)| *limit > 0)
        .map(|(scope, window, limit)| Bound { scope, window, limit })
    }

    /// True when some limit is on.
    pub fn any(&self) -> bool {
        self.bounds().next().is_some()
    }

    /// True when some limit counts every call (so a check must see every instance's writes).
    pub fn any_global(&self) -> bool {
        self.bounds().any(|bound| bound.scope == Scope::All)
    }

    /// The first limit broken by one more call, given how many calls already ring within each
    /// window of it (`near(scope, window)`).
    pub fn first_broken(&self, near: impl Fn(Scope, Window) -> u64) -> Option<LimitHit> {
        self.bounds().find(|bound| near(bound.scope, bound.window) >= bound.limit).map(|bound| LimitHit { bound })
    }
}

/// A limit one more call would break: as many calls as it allows already ring within its window
/// of that call's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct LimitHit {
    /// The limit.
    pub bound: Bound,
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Bound { scope, window, limit } = self.bound;
        let whom = match scope {
            Scope::Number => "to this number",
            Scope::All => "in all",
        };
        let calls = if limit == 1 { "1 call".to_owned() } else { format!("{limit} calls") };
        let ring = if limit == 1 { "rings" } else { "ring" };
        write!(
            f,
            "{calls} {whom} already {ring} within {} of this time, the most allowed; choose a time further away",
            window.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_are_zero_are_off() {
        let limits = Limits { per_number_hour: 2, global_day: 5, ..Limits::NONE };
        let on: Vec<_> = limits.bounds().map(|b| (b.scope, b.window, b.limit)).collect();
        assert_eq!(on, [(Scope::Number, Window::Hour, 2), (Scope::All, Window::Day, 5)]);
        assert!(!Limits::NONE.any());
        assert!(limits.any_global());
    }

    #[test]
    fn the_first_limit_reached_is_named() {
        let limits = Limits { per_number_hour: 2, per_number_day: 3, global_hour: 10, global_day: 0 };
        let near = |scope: Scope, window: Window| match (scope, window) {
            (Scope::Number, Window::Hour) => 1,
            (Scope::Number, Window::Day) => 3,
            _ => 0,
        };
        let hit = limits.first_broken(near).expect("the daily limit is reached");
        assert_eq!((hit.bound.scope, hit.bound.window, hit.bound.limit), (Scope::Number, Window::Day, 3));
        assert!(hit.to_string().contains("3 calls to this number already ring within a day"), "{hit}");
        assert_eq!(limits.first_broken(|_, _| 1), None);
    }
}

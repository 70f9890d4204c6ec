//! Errors as an operator reads them. Every error type says its own layer's words in `Display`
//! and carries what went wrong below it as its `source`; [`CauseChain`] prints the whole story on
//! one line, e.g. `cannot open database sqlite:///nope/x.db: the database failed: error returned
//! from database: (code: 14) unable to open database file`.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its causes, joined by `: `.
pub struct CauseChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for CauseChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        f.write_str(&said)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let words = cause.to_string();
            // Some libraries also put their cause's words in their own message: say them once.
            if !said.ends_with(&words) {
                write!(f, ": {words}")?;
            }
            said = words;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the settings")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn each_cause_follows_the_message_of_the_layer_above_it() {
        let error = Outer(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));

        assert_eq!(CauseChain(&error).to_string(), "cannot read the settings: no such file");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the query failed: {0}")]
    struct Repeating(#[source] std::io::Error);

    #[test]
    fn a_cause_its_error_already_quotes_is_said_once() {
        let error = Outer2(Repeating(std::io::Error::other("disk full")));

        assert_eq!(CauseChain(&error).to_string(), "cannot save: the query failed: disk full");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot save")]
    struct Outer2(#[source] Repeating);
}

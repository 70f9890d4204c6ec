//! The joke sources: where the text spoken to the callee comes from.
//!
//! A collection of jokes is compiled into the binary (`jokes.txt`, one joke per line), so a call
//! always has something to say. Optionally an external HTTP source answering `{"joke": "..."}` is
//! asked first; anything wrong with its answer (an error, a slow reply, a malformed or unusable
//! joke) is logged and the collection is used instead, because a late or failed joke must never
//! hold up a callee who is already listening.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::IteratorRandom;
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::Deserialize;

use crate::errors::CauseChain;

/// The embedded collection, one joke per line.
const COLLECTION_TEXT: &str = include_str!("jokes.txt");

/// How long the external source may take, from connecting to the last byte of the body.
const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest joke we agree to speak, in characters.
const MAX_JOKE_CHARS: usize = 3000;

/// Bound on the external body, so a misbehaving source cannot make us buffer without limit.
/// Generous enough for a maximal joke written entirely as JSON `\uXXXX` escapes plus extra fields.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A joke chosen to be spoken on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joke {
    /// The words to speak.
    pub text: String,
    /// Where the words came from.
    pub source: JokeSource,
}

/// Where a [`Joke`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JokeSource {
    /// The collection compiled into the service.
    Collection,
    /// The configured external HTTP source.
    External,
}

/// The joke sources of the service; cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Jokes {
    inner: Arc<Inner>,
}

impl fmt::Debug for Jokes {
    /// Shows the shape of the sources but not the external URL, which may carry an access key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jokes")
            .field("collection_len", &self.collection_len())
            .field("external", &self.inner.external.is_some())
            .finish()
    }
}

struct Inner {
    collection: Vec<&'static str>,
    external: Option<ExternalSource>,
}

/// An HTTP endpoint answering `{"joke": "..."}`.
struct ExternalSource {
    url: String,
    http: reqwest::Client,
}

/// Why an answer from the external source was not used.
#[derive(Debug, thiserror::Error)]
enum ExternalJokeError {
    #[error("no complete answer within {EXTERNAL_TIMEOUT:?}")]
    TimedOut,
    #[error("the request failed")]
    Request(#[source] reqwest::Error),
    #[error("the source answered with status {0}")]
    Status(StatusCode),
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("the body is not a JSON object with a string field `joke`")]
    Json(#[source] serde_json::Error),
    #[error("the joke is empty")]
    Empty,
    #[error("the joke is {0} characters long, more than {MAX_JOKE_CHARS}")]
    TooLong(usize),
    #[error("the joke is the one this number heard last time")]
    SameAsPrevious,
}

impl From<reqwest::Error> for ExternalJokeError {
    /// Drops the URL, which may carry an access key in its query string, since these errors are logged.
    fn from(error: reqwest::Error) -> Self {
        Self::Request(error.without_url())
    }
}

/// The part of the external answer we read; other fields are ignored.
#[derive(Deserialize)]
struct ExternalPayload {
    joke: String,
}

impl Jokes {
    /// Builds the sources: the embedded collection, and `external_url` (if given and not blank)
    /// asked first through `http`.
    pub fn new(external_url: Option<String>, http: reqwest::Client) -> Self {
        let external = external_url.filter(|url| !url.trim().is_empty()).map(|url| ExternalSource { url, http });
        let inner = Inner { collection: parse_collection(COLLECTION_TEXT), external };
        Self { inner: Arc::new(inner) }
    }

    /// Chooses a joke that differs from `previous` (the last joke the same number heard).
    ///
    /// The external source is used when configured and its answer is usable; otherwise the
    /// reason is logged and a random joke from the collection is chosen.
    pub async fn pick(&self, previous: Option<&str>) -> Joke {
        if let Some(external) = &self.inner.external {
            match external.fetch(previous).await {
                Ok(text) => {
                    return Joke { text, source: JokeSource::External };
                }
                Err(error) => tracing::warn!(
                    error = %CauseChain(&error),
                    "external joke not used; telling one from the collection"
                ),
            }
        }
        self.pick_from_collection(previous)
    }

    /// How many jokes the embedded collection holds.
    pub fn collection_len(&self) -> usize {
        self.inner.collection.len()
    }

    fn pick_from_collection(&self, previous: Option<&str>) -> Joke {
        let text = self
            .inner
            .collection
            .iter()
            .filter(|joke| Some(**joke) != previous)
            .choose(&mut rand::thread_rng())
            .expect("the embedded collection holds many distinct jokes");
        Joke { text: (*text).to_owned(), source: JokeSource::Collection }
    }
}

impl ExternalSource {
    /// Asks the source for a joke and keeps it only if it can be spoken after `previous`.
    async fn fetch(&self, previous: Option<&str>) -> Result<String, ExternalJokeError> {
        let body = tokio::time::timeout(EXTERNAL_TIMEOUT, self.fetch_body())
            .await
            .map_err(|_elapsed| ExternalJokeError::TimedOut)??;
        usable_joke(&body, previous)
    }

    async fn fetch_body(&self) -> Result<Vec<u8>, ExternalJokeError> {
        let mut response = self.http.get(&self.url).header(ACCEPT, "application/json").send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(ExternalJokeError::Status(status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ExternalJokeError::BodyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Reads the joke out of an external answer and checks that it can be spoken.
fn usable_joke(body: &[u8], previous: Option<&str>) -> Result<String, ExternalJokeError> {
    let payload: ExternalPayload = serde_json::from_slice(body).map_err(ExternalJokeError::Json)?;
    let text = payload.joke.trim();
    if text.is_empty() {
        return Err(ExternalJokeError::Empty);
    }
    let length = text.chars().count();
    if length > MAX_JOKE_CHARS {
        return Err(ExternalJokeError::TooLong(length));
    }
    if previous.map(str::trim) == Some(text) {
        return Err(ExternalJokeError::SameAsPrevious);
    }
    Ok(text.to_owned())
}

fn parse_collection(text: &'static str) -> Vec<&'static str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn collection_only() -> Jokes {
        Jokes::new(None, reqwest::Client::new())
    }

    #[test]
    fn the_collection_holds_at_least_a_hundred_distinct_jokes() {
        let jokes = collection_only();

        let distinct: HashSet<&str> = jokes.inner.collection.iter().copied().collect();

        assert!(jokes.collection_len() >= 100, "{}", jokes.collection_len());
        assert_eq!(distinct.len(), jokes.collection_len(), "duplicates found");
    }

    #[test]
    fn every_collected_joke_is_non_empty_and_short_enough_to_speak() {
        let jokes = collection_only();

        for joke in &jokes.inner.collection {
            assert!(!joke.is_empty());
            assert!(joke.chars().count() <= MAX_JOKE_CHARS, "too long: {joke}");
        }
    }

    #[tokio::test]
    async fn picking_from_the_collection_never_repeats_the_previous_joke() {
        let jokes = collection_only();
        let mut previous = jokes.pick(None).await.text;

        for _ in 0..2000 {
            let joke = jokes.pick(Some(&previous)).await;

            assert_eq!(joke.source, JokeSource::Collection);
            assert_ne!(joke.text, previous);
            previous = joke.text;
        }
    }

    #[test]
    fn a_blank_external_url_means_no_external_source() {
        let jokes = Jokes::new(Some("  ".to_owned()), reqwest::Client::new());

        assert!(jokes.inner.external.is_none());
    }

    #[test]
    fn a_joke_over_three_thousand_characters_is_refused() {
        let body = serde_json::json!({ "joke": "a".repeat(MAX_JOKE_CHARS + 1) }).to_string();

        let outcome = usable_joke(body.as_bytes(), None);

        assert!(matches!(outcome, Err(ExternalJokeError::TooLong(3001))));
    }

    #[test]
    fn a_blank_external_joke_is_refused() {
        let outcome = usable_joke(br#"{"joke": "   "}"#, None);

        assert!(matches!(outcome, Err(ExternalJokeError::Empty)));
    }

    #[test]
    fn the_cause_chain_names_every_source() {
        let inner = serde_json::from_str::<serde_json::Value>("{").expect_err("truncated JSON");
        let error = ExternalJokeError::Json(inner);

        let shown = CauseChain(&error).to_string();

        assert!(shown.starts_with("the body is not a JSON object"), "{shown}");
        assert!(shown.contains("EOF"), "{shown}");
    }
}

//! Start-up configuration in sections (server, access, database, telnyx, calls, dialing, limits,
//! calling hours, retries, answering machine): built-in defaults, then a JSON file
//! (`config.dev.json` or `--config`), then the environment, parsed once into domain values, so a
//! bad or missing value stops start-up with one line naming the setting and its variable.

mod sources;
mod values;

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::domain::hours::{CallingHours, QuietAction};
use crate::domain::limits::Limits;
use crate::domain::machine::MachinePolicy;
use crate::domain::policy::Countries;
use crate::domain::retry::RetryPolicy;
use crate::domain::{NumberType, PhoneNumber};

use sources::{Sections, Text, setting};
pub use values::{DatabaseUrl, HostName, Secret, SecureCookies, redact_url};

/// A configuration value that is missing or wrong, named by its key in the file and its
/// environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required setting has no value.
    #[error("configuration: {env} ({key} in the file) is not set ({hint})")]
    Missing {
        /// The environment variable.
        env: &'static str,
        /// The setting's `section.key` in the file.
        key: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A setting has a value that cannot be used.
    #[error("configuration: {env} ({key} in the file) is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        env: &'static str,
        /// The setting's `section.key` in the file.
        key: String,
        /// Why.
        reason: String,
    },
    /// The configuration file could not be read, or has a key no setting has.
    #[error("configuration file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the service listens and answers.
    pub server: ServerSettings,
    /// Who may use the page and the API.
    pub access: AccessSettings,
    /// `sqlite://PATH` (one instance) or `postgres://…` (any number of instances sharing it).
    pub database_url: DatabaseUrl,
    /// The Telnyx account.
    pub telnyx: TelnyxSettings,
    /// Which calls may be scheduled and what they say.
    pub calls: CallSettings,
    /// How the instances together pace their dials.
    pub dialing: DialingSettings,
    /// How many calls may ring near one another, per number and in all.
    pub limits: Limits,
    /// When callees may be rung (their local time).
    pub calling_hours: CallingHours,
    /// What happens to a due call in its callee's quiet hours.
    pub quiet_action: QuietAction,
    /// How busy and unanswered calls are retried.
    pub retry: RetryPolicy,
    /// What to do when an answering machine picks up.
    pub machine: MachinePolicy,
}

/// Where the service listens and answers, and how this instance is known.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where the HTTP server listens.
    pub bind: SocketAddr,
    /// The base URL Telnyx reaches us at; None means "ask the local ngrok agent".
    pub public_url: Option<String>,
    /// Host names the service answers to besides its own address and the public URL's host.
    pub allowed_hosts: Vec<HostName>,
    /// Origins allowed by CORS (none by default).
    pub cors_origins: Vec<String>,
    /// How many threads answer HTTP requests; None: one per core.
    pub web_workers: Option<usize>,
    /// How long shutdown waits for in-flight work.
    pub shutdown_timeout: Duration,
    /// This instance's name, stable across its restarts (unique per instance when several share
    /// a database).
    pub instance_id: String,
    /// For tests of clock skew only: how far this instance's own clock is set off, in seconds.
    pub clock_offset_secs: i64,
}

/// Who may use the page and the API.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// The token the page and the API require, when set.
    pub api_token: Option<Secret>,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Whether cookies carry `Secure`.
    pub secure_cookies: SecureCookies,
    /// The key of the anti-forgery tokens; None: one generated once and kept in the database.
    pub secret: Option<Secret>,
}

/// The Telnyx account.
#[derive(Debug, Clone)]
pub struct TelnyxSettings {
    /// The API key (Bearer).
    pub api_key: Secret,
    /// How webhooks are trusted.
    pub webhooks: WebhookTrust,
    /// The Call Control application's id.
    pub connection_id: String,
    /// The caller id calls are made from.
    pub from_number: PhoneNumber,
    /// The API's base URL, e.g. `https://api.telnyx.com/v2`.
    pub api_base: String,
    /// How long one API request may take before it counts as lost.
    pub timeout: Duration,
}

/// How a webhook is told from a forgery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookTrust {
    /// By its signature, made with the account's key; the base64 ED25519 public key.
    Signed(String),
    /// Not at all: development only.
    Unsigned,
}

/// Which calls may be scheduled and what they say.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// An external joke API (`GET` → `{"joke": …}`).
    pub jokes_url: Option<String>,
    /// The text-to-speech voice.
    pub voice: String,
    /// The speech language, when the voice needs one.
    pub language: Option<String>,
    /// How far ahead calls may be scheduled.
    pub horizon: chrono::Duration,
    /// How late a call that fell due during downtime may still be dialed.
    pub grace: chrono::Duration,
    /// How long the phone rings before Telnyx gives up.
    pub ring_timeout_secs: u32,
    /// How long an answered call may last before Telnyx hangs it up by itself.
    pub time_limit_secs: u32,
    /// Where calls may go.
    pub allowed_countries: Countries,
    /// Number types refused by default (satellite, personal…) that may be called all the same.
    pub allowed_number_types: Vec<NumberType>,
}

/// How the instances together pace their dials, and how a claim on a call is held.
#[derive(Debug, Clone)]
pub struct DialingSettings {
    /// Dials allowed in any rolling `window`, by all instances sharing the database together.
    pub limit: u32,
    /// The pacing window.
    pub window: Duration,
    /// The most calls in progress at once (claimed and not yet ended), by all instances
    /// together; None: no limit.
    pub max_active_calls: Option<u32>,
    /// How long a claim on a call holds before it is considered abandoned.
    pub lease: Duration,
}

impl Config {
    /// Loads defaults, the file (if any) and the environment, and checks every setting.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, |env| std::env::var(env).ok())
    }

    /// Like [`Config::load`] with the environment given as a lookup (for tests).
    pub fn from_sources(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::parse(sources::gather(file, env)?)
    }

    /// Only the database URL, for commands that need nothing else (migrations).
    pub fn database_url(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
        required(&sources::gather(file, env)?.database.url, "database.url").map(DatabaseUrl::new)
    }

    fn parse(s: Sections) -> Result<Self, ConfigError> {
        let telnyx = telnyx(&s.telnyx)?;
        let calls = calls(&s.calls, &telnyx.from_number)?;
        Ok(Self {
            server: server(&s.server)?,
            access: access(&s.access)?,
            database_url: DatabaseUrl::new(required(&s.database.url, "database.url")?),
            telnyx,
            calls,
            dialing: dialing(&s.dialing)?,
            limits: Limits {
                per_number_hour: parse(&s.limits.per_number_hour, "limits.per_number_hour")?,
                per_number_day: parse(&s.limits.per_number_day, "limits.per_number_day")?,
                global_hour: parse(&s.limits.global_hour, "limits.global_hour")?,
                global_day: parse(&s.limits.global_day, "limits.global_day")?,
            },
            calling_hours: parse(&s.calling_hours.allowed, "calling_hours.allowed")?,
            quiet_action: parse(&s.calling_hours.quiet_action, "calling_hours.quiet_action")?,
            retry: RetryPolicy {
                retries: parse(&s.retries.attempts, "retries.attempts")?,
                spacing: seconds(&s.retries.spacing_secs, "retries.spacing_secs")?,
            },
            machine: parse(&s.answering_machine.action, "answering_machine.action")?,
        })
    }
}

fn server(s: &sources::Server) -> Result<ServerSettings, ConfigError> {
    Ok(ServerSettings {
        bind: parse(&s.bind, "server.bind")?,
        public_url: optional_url(&s.public_url, "server.public_url")?,
        allowed_hosts: list(&s.allowed_hosts, "server.allowed_hosts")?,
        cors_origins: list(&s.cors_origins, "server.cors_origins")?,
        web_workers: Some(parse(&s.web_workers, "server.web_workers")?).filter(|workers| *workers > 0),
        shutdown_timeout: Duration::from_secs(parse(&s.shutdown_secs, "server.shutdown_secs")?),
        instance_id: required(&s.instance_id, "server.instance_id")?,
        clock_offset_secs: parse(&s.clock_offset_secs, "server.clock_offset_secs")?,
    })
}

/// Shortest access token accepted: anything shorter could be guessed.
const MIN_TOKEN_LEN: usize = 16;
/// Shortest anti-forgery secret accepted (32 bytes of key material for the HMAC).
const MIN_SECRET_LEN: usize = 32;
/// Longest sign-in accepted: a session that never ends is a cookie that is as good as the token.
const MAX_SESSION_SECS: u64 = 366 * 24 * 3600;

fn access(s: &sources::Access) -> Result<AccessSettings, ConfigError> {
    let session_ttl = seconds(&s.session_secs, "access.session_secs")?;
    if session_ttl.as_secs() > MAX_SESSION_SECS {
        return Err(invalid("access.session_secs", format!("must be at most {MAX_SESSION_SECS} (a year)")));
    }
    Ok(AccessSettings {
        api_token: secret(&s.api_token, "access.api_token", MIN_TOKEN_LEN)?,
        session_ttl,
        secure_cookies: parse(&s.secure_cookies, "access.secure_cookies")?,
        secret: secret(&s.secret, "access.secret", MIN_SECRET_LEN)?,
    })
}

fn telnyx(s: &sources::Telnyx) -> Result<TelnyxSettings, ConfigError> {
    let webhooks = match (parse(&s.allow_unsigned_webhooks, "telnyx.allow_unsigned_webhooks")?, s.public_key.get()) {
        (true, _) => WebhookTrust::Unsigned,
        (false, Some(key)) => WebhookTrust::Signed(key.to_owned()),
        (false, None) => {
            let hint = "the base64 public key from the Telnyx portal; `make run` sets it for the simulator";
            return Err(ConfigError::Missing {
                env: setting("telnyx.public_key").env,
                key: "telnyx.public_key".into(),
                hint,
            });
        }
    };
    Ok(TelnyxSettings {
        api_key: Secret::new(required(&s.api_key, "telnyx.api_key")?),
        webhooks,
        connection_id: required(&s.connection_id, "telnyx.connection_id")?,
        from_number: PhoneNumber::parse(&required(&s.from_number, "telnyx.from_number")?)
            .map_err(|e| invalid("telnyx.from_number", e.to_string()))?,
        api_base: checked_url(&required(&s.api_base, "telnyx.api_base")?, "telnyx.api_base")?,
        timeout: seconds(&s.timeout_secs, "telnyx.timeout_secs")?,
    })
}

fn calls(s: &sources::Calls, from: &PhoneNumber) -> Result<CallSettings, ConfigError> {
    Ok(CallSettings {
        jokes_url: optional_url(&s.jokes_url, "calls.jokes_url")?,
        voice: required(&s.voice, "calls.voice")?,
        language: s.language.get().map(str::to_owned),
        horizon: chrono::Duration::days(positive(&s.horizon_days, "calls.horizon_days")?),
        grace: chrono::Duration::seconds(parse(&s.grace_secs, "calls.grace_secs")?),
        ring_timeout_secs: parse(&s.ring_timeout_secs, "calls.ring_timeout_secs")?,
        time_limit_secs: time_limit(&s.time_limit_secs)?,
        allowed_countries: countries(&s.allowed_countries, from)?,
        allowed_number_types: list(&s.allowed_number_types, "calls.allowed_number_types")?,
    })
}

fn dialing(s: &sources::Dialing) -> Result<DialingSettings, ConfigError> {
    Ok(DialingSettings {
        limit: positive(&s.limit, "dialing.limit")?,
        window: seconds(&s.window_secs, "dialing.window_secs")?,
        max_active_calls: Some(parse(&s.max_active_calls, "dialing.max_active_calls")?).filter(|most| *most > 0),
        lease: seconds(&s.lease_secs, "dialing.lease_secs")?,
    })
}

/// Telnyx's bounds on a dial's `time_limit_secs`.
const TIME_LIMIT_SECS: std::ops::RangeInclusive<u32> = 30..=14_400;

fn time_limit(text: &Text) -> Result<u32, ConfigError> {
    let secs = parse(text, "calls.time_limit_secs")?;
    if !TIME_LIMIT_SECS.contains(&secs) {
        let (low, high) = (TIME_LIMIT_SECS.start(), TIME_LIMIT_SECS.end());
        return Err(invalid(
            "calls.time_limit_secs",
            format!("must be from {low} to {high} seconds (Telnyx's bounds)"),
        ));
    }
    Ok(secs)
}

/// The allowed destination countries; by default only the caller id's own country.
fn countries(text: &Text, from: &PhoneNumber) -> Result<Countries, ConfigError> {
    match text.get() {
        None => Ok(Countries::Only(from.region().into_iter().collect())),
        Some("*") => Ok(Countries::Any),
        Some(_) => {
            let codes: Vec<String> = list(text, "calls.allowed_countries")?;
            let codes: Vec<String> = codes.iter().map(|code| code.to_ascii_uppercase()).collect();
            if let Some(bad) = codes.iter().find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic())) {
                let reason = format!("`{bad}` is not a two-letter country code (use e.g. IE,US or *)");
                return Err(invalid("calls.allowed_countries", reason));
            }
            Ok(Countries::Only(codes))
        }
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { env: setting(path).env, key: path.to_owned(), reason: reason.into() }
}

fn required(text: &Text, path: &str) -> Result<String, ConfigError> {
    text.get().map(str::to_owned).ok_or_else(|| ConfigError::Missing {
        env: setting(path).env,
        key: path.to_owned(),
        hint: "see the configuration table in README.md; `make run` sets up the simulator without an account",
    })
}

fn parse<T: FromStr>(text: &Text, path: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    required(text, path)?.parse().map_err(|e: T::Err| invalid(path, e.to_string()))
}

fn positive<T: FromStr + Default + PartialOrd>(text: &Text, path: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let value: T = parse(text, path)?;
    if value <= T::default() {
        return Err(invalid(path, "must be greater than zero"));
    }
    Ok(value)
}

/// A duration of whole seconds, more than none.
fn seconds(text: &Text, path: &str) -> Result<Duration, ConfigError> {
    positive(text, path).map(Duration::from_secs)
}

/// A comma-separated list, blanks dropped, each item parsed.
fn list<T: FromStr>(text: &Text, path: &str) -> Result<Vec<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let items = text.get().unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty());
    items.map(|item| item.parse().map_err(|e: T::Err| invalid(path, e.to_string()))).collect()
}

/// A secret of at least `min` characters, when set.
fn secret(text: &Text, path: &str, min: usize) -> Result<Option<Secret>, ConfigError> {
    match text.get() {
        Some(value) if value.len() < min => Err(invalid(path, format!("must be at least {min} characters"))),
        value => Ok(value.map(Secret::new)),
    }
}

fn optional_url(text: &Text, path: &str) -> Result<Option<String>, ConfigError> {
    text.get().map(|url| checked_url(url, path)).transpose()
}

fn checked_url(url: &str, path: &str) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(path, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(path, "must be an http or https URL"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests;

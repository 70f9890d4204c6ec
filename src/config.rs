//! Start-up configuration: built-in defaults, then a JSON file (`config.dev.json` or `--config`),
//! then the environment, checked once so a bad or missing value stops start-up with one line
//! naming the field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::domain::hours::{CallingHours, QuietAction};
use crate::domain::limits::Limits;
use crate::domain::machine::MachinePolicy;
use crate::domain::policy::Countries;
use crate::domain::retry::RetryPolicy;
use crate::domain::{NumberType, PhoneNumber};

/// A value that must never be printed: its `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A database URL, which may hold a password: `Debug` and `Display` show it without.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for the one place that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// A database URL with any password removed, safe to show.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}://…{}", &url[..scheme_end], &url[at..]),
        _ => url.to_owned(),
    }
}

/// A configuration value that is missing or wrong, named by its environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required field has no value.
    #[error("configuration: {env} is not set ({hint})")]
    Missing {
        /// The environment variable.
        env: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// A field has a value that cannot be used.
    #[error("configuration: {env} is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        env: &'static str,
        /// Why.
        reason: String,
    },
    /// The configuration file could not be read.
    #[error("configuration file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Every setting, each a key in the JSON file and an environment variable, with its default.
const FIELDS: &[(&str, &str, Option<&str>)] = &[
    ("bind", "DIALAJOKE_BIND", Some("127.0.0.1:8080")),
    ("public_url", "DIALAJOKE_PUBLIC_URL", None),
    ("database_url", "DIALAJOKE_DATABASE_URL", Some("sqlite://dialajoke.db")),
    ("jokes_url", "DIALAJOKE_JOKES_URL", None),
    ("telnyx_api_key", "TELNYX_API_KEY", None),
    ("telnyx_public_key", "TELNYX_PUBLIC_KEY", None),
    ("telnyx_connection_id", "TELNYX_CONNECTION_ID", None),
    ("telnyx_from_number", "TELNYX_FROM_NUMBER", None),
    ("telnyx_api_base", "TELNYX_API_BASE", Some("https://api.telnyx.com/v2")),
    ("telnyx_timeout_secs", "DIALAJOKE_TELNYX_TIMEOUT_SECS", Some("10")),
    ("allow_unsigned_webhooks", "DIALAJOKE_ALLOW_UNSIGNED_WEBHOOKS", Some("false")),
    ("voice", "DIALAJOKE_VOICE", Some("Telnyx.KokoroTTS.af")),
    ("language", "DIALAJOKE_LANGUAGE", None),
    ("horizon_days", "DIALAJOKE_HORIZON_DAYS", Some("365")),
    ("grace_secs", "DIALAJOKE_GRACE_SECS", Some("600")),
    ("dial_limit", "DIALAJOKE_DIAL_LIMIT", Some("150")),
    ("dial_window_secs", "DIALAJOKE_DIAL_WINDOW_SECS", Some("5")),
    ("ring_timeout_secs", "DIALAJOKE_RING_TIMEOUT_SECS", Some("30")),
    ("max_active_calls", "DIALAJOKE_MAX_ACTIVE_CALLS", Some("0")),
    ("lease_secs", "DIALAJOKE_LEASE_SECS", Some("20")),
    ("instance_id", "DIALAJOKE_INSTANCE_ID", Some("single")),
    ("cors_origins", "DIALAJOKE_CORS_ORIGINS", Some("")),
    ("allowed_hosts", "DIALAJOKE_ALLOWED_HOSTS", Some("")),
    ("api_token", "DIALAJOKE_API_TOKEN", None),
    ("secret", "DIALAJOKE_SECRET", None),
    ("session_secs", "DIALAJOKE_SESSION_SECS", Some("43200")),
    ("secure_cookies", "DIALAJOKE_SECURE_COOKIES", Some("auto")),
    ("allowed_countries", "DIALAJOKE_ALLOWED_COUNTRIES", None),
    ("allowed_number_types", "DIALAJOKE_ALLOWED_NUMBER_TYPES", Some("")),
    ("web_workers", "DIALAJOKE_WEB_WORKERS", Some("0")),
    ("limit_per_number_hour", "DIALAJOKE_LIMIT_PER_NUMBER_HOUR", Some("10")),
    ("limit_per_number_day", "DIALAJOKE_LIMIT_PER_NUMBER_DAY", Some("30")),
    ("limit_global_hour", "DIALAJOKE_LIMIT_GLOBAL_HOUR", Some("1000")),
    ("limit_global_day", "DIALAJOKE_LIMIT_GLOBAL_DAY", Some("5000")),
    ("shutdown_secs", "DIALAJOKE_SHUTDOWN_SECS", Some("10")),
    ("clock_offset_secs", "DIALAJOKE_CLOCK_OFFSET_SECS", Some("0")),
    ("calling_hours", "DIALAJOKE_CALLING_HOURS", Some("08:00-21:00")),
    ("quiet_hours_action", "DIALAJOKE_QUIET_HOURS_ACTION", Some("defer")),
    ("retry_attempts", "DIALAJOKE_RETRY_ATTEMPTS", Some("2")),
    ("retry_spacing_secs", "DIALAJOKE_RETRY_SPACING_SECS", Some("600")),
    ("answering_machine", "DIALAJOKE_ANSWERING_MACHINE", Some("message")),
];

/// Telnyx account settings.
#[derive(Debug, Clone)]
pub struct TelnyxSettings {
    /// The API key (Bearer).
    pub api_key: Secret,
    /// The account's base64 ED25519 public key; None only when unsigned webhooks are allowed.
    pub public_key: Option<String>,
    /// The Call Control application's id.
    pub connection_id: String,
    /// The caller id calls are made from.
    pub from_number: PhoneNumber,
    /// The API's base URL, e.g. `https://api.telnyx.com/v2`.
    pub api_base: String,
    /// How long one API request may take before it counts as lost.
    pub timeout: Duration,
}

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub bind: SocketAddr,
    /// The base URL Telnyx reaches us at; None means "ask the local ngrok agent".
    pub public_url: Option<String>,
    /// `sqlite://PATH` (one instance) or `postgres://…` (any number of instances sharing it).
    pub database_url: DatabaseUrl,
    /// An external joke API (`GET` → `{"joke": …}`).
    pub jokes_url: Option<String>,
    /// Telnyx account settings.
    pub telnyx: TelnyxSettings,
    /// Development switch: accept webhooks without a valid signature.
    pub allow_unsigned_webhooks: bool,
    /// The text-to-speech voice.
    pub voice: String,
    /// The speech language, when the voice needs one.
    pub language: Option<String>,
    /// How far ahead calls may be scheduled.
    pub horizon: chrono::Duration,
    /// How late a call that fell due during downtime may still be dialed.
    pub grace: chrono::Duration,
    /// Dials allowed in any rolling `dial_window`, by all instances sharing the database together.
    pub dial_limit: u32,
    /// The pacing window.
    pub dial_window: Duration,
    /// The most calls in progress at once (claimed and not yet ended), by all instances
    /// together; None: no limit.
    pub max_active_calls: Option<u32>,
    /// How long the phone rings before Telnyx gives up.
    pub ring_timeout_secs: u32,
    /// How long a claim on a call holds before it is considered abandoned.
    pub lease: Duration,
    /// This instance's name, stable across its restarts (unique per instance when several share a database).
    pub instance_id: String,
    /// Origins allowed by CORS (none by default).
    pub cors_origins: Vec<String>,
    /// Host names the service answers to besides its own address and the public URL's host.
    pub allowed_hosts: Vec<HostName>,
    /// How long shutdown waits for in-flight work.
    pub shutdown_timeout: Duration,
    /// The token the page and the API require, when set.
    pub api_token: Option<Secret>,
    /// The key of the anti-forgery tokens; None: one generated once and kept in the database.
    pub secret: Option<Secret>,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Whether cookies carry `Secure`.
    pub secure_cookies: SecureCookies,
    /// Where calls may go.
    pub allowed_countries: Countries,
    /// Number types refused by default (satellite, personal…) that may be called all the same.
    pub allowed_number_types: Vec<NumberType>,
    /// How many threads answer HTTP requests; None: one per core.
    pub web_workers: Option<usize>,
    /// How many calls may ring near one another, per number and in all.
    pub limits: Limits,
    /// For tests of clock skew only: how far this instance's own clock is set off, in seconds.
    pub clock_offset_secs: i64,
    /// When callees may be rung (their local time).
    pub calling_hours: CallingHours,
    /// What happens to a due call in its callee's quiet hours.
    pub quiet_action: QuietAction,
    /// How busy and unanswered calls are retried.
    pub retry: RetryPolicy,
    /// What to do when an answering machine picks up.
    pub machine: MachinePolicy,
}

/// A host name (lower case, or an IP address, IPv6 in brackets) with its port, or any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName {
    /// The name, e.g. `jokes.example.org`, `10.0.0.7`, `[::1]`.
    pub host: String,
    /// The port, when only that one is meant.
    pub port: Option<u16>,
}

impl HostName {
    /// The host and port of an http(s) URL; None for a URL without a host.
    pub fn of_url(url: &reqwest::Url) -> Option<Self> {
        Some(Self { host: url.host_str()?.to_owned(), port: url.port() })
    }
}

/// `name` or `name:port`, read as a URL's host would be.
fn host_name(entry: &str) -> Result<HostName, ConfigError> {
    let url = reqwest::Url::parse(&format!("http://{entry}")).ok().filter(|url| {
        url.path() == "/" && url.username().is_empty() && url.query().is_none() && url.fragment().is_none()
    });
    url.as_ref()
        .and_then(HostName::of_url)
        .ok_or_else(|| invalid("allowed_hosts", format!("`{entry}` is not a host name or host:port")))
}

/// Whether the cookies the service sets carry `Secure` (sent over HTTPS only). Decided by
/// configuration, never by a header a client or proxy sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// When the public URL is `https`.
    Auto,
    /// Always.
    Always,
    /// Never (plain HTTP on a trusted network).
    Never,
}

impl SecureCookies {
    /// Whether cookies are secure for a service reached at `public_url`.
    pub fn for_public_url(self, public_url: &str) -> bool {
        match self {
            Self::Auto => public_url.starts_with("https://"),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

impl std::str::FromStr for SecureCookies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "true" => Ok(Self::Always),
            "false" => Ok(Self::Never),
            other => Err(format!("`{other}` is not one of auto, true, false")),
        }
    }
}

type Values = BTreeMap<&'static str, String>;

impl Config {
    /// Loads defaults, the file (if any) and the environment, and checks every field.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, |env| std::env::var(env).ok())
    }

    /// Like [`Config::load`] with the environment given as a lookup (for tests).
    pub fn from_sources(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::check(&merged(file, env)?)
    }

    /// Only the database URL, for commands that need nothing else (migrations).
    pub fn database_url(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
        required(&merged(file, env)?, "database_url").map(DatabaseUrl::new)
    }

    fn check(v: &Values) -> Result<Self, ConfigError> {
        let allow_unsigned: bool = parse(v, "allow_unsigned_webhooks")?;
        let public_key = optional(v, "telnyx_public_key");
        if public_key.is_none() && !allow_unsigned {
            return Err(ConfigError::Missing {
                env: "TELNYX_PUBLIC_KEY",
                hint: "the base64 public key from the Telnyx portal; `make run` sets it for the simulator",
            });
        }
        Ok(Self {
            bind: parse(v, "bind")?,
            public_url: optional(v, "public_url").map(|url| checked_url(&url, "public_url")).transpose()?,
            database_url: DatabaseUrl::new(required(v, "database_url")?),
            jokes_url: optional(v, "jokes_url").map(|url| checked_url(&url, "jokes_url")).transpose()?,
            telnyx: TelnyxSettings {
                api_key: Secret::new(required(v, "telnyx_api_key")?),
                public_key,
                connection_id: required(v, "telnyx_connection_id")?,
                from_number: PhoneNumber::parse(&required(v, "telnyx_from_number")?)
                    .map_err(|e| invalid("telnyx_from_number", e.to_string()))?,
                api_base: checked_url(&required(v, "telnyx_api_base")?, "telnyx_api_base")?,
                timeout: Duration::from_secs(positive(v, "telnyx_timeout_secs")?),
            },
            allow_unsigned_webhooks: allow_unsigned,
            voice: required(v, "voice")?,
            language: optional(v, "language"),
            horizon: chrono::Duration::days(positive(v, "horizon_days")?),
            grace: chrono::Duration::seconds(parse(v, "grace_secs")?),
            dial_limit: positive(v, "dial_limit")?,
            dial_window: Duration::from_secs(positive(v, "dial_window_secs")?),
            max_active_calls: Some(parse(v, "max_active_calls")?).filter(|most| *most > 0),
            ring_timeout_secs: parse(v, "ring_timeout_secs")?,
            lease: Duration::from_secs(positive(v, "lease_secs")?),
            instance_id: required(v, "instance_id")?,
            cors_origins: list(v, "cors_origins"),
            allowed_hosts: list(v, "allowed_hosts").iter().map(|entry| host_name(entry)).collect::<Result<_, _>>()?,
            shutdown_timeout: Duration::from_secs(parse(v, "shutdown_secs")?),
            api_token: optional(v, "api_token").map(|t| checked_token(&t)).transpose()?,
            secret: optional(v, "secret").map(|s| checked_secret(&s)).transpose()?,
            session_ttl: session_lifetime(v)?,
            secure_cookies: parse(v, "secure_cookies")?,
            allowed_countries: countries(v)?,
            allowed_number_types: number_types(v)?,
            web_workers: Some(parse(v, "web_workers")?).filter(|workers| *workers > 0),
            limits: Limits {
                per_number_hour: parse(v, "limit_per_number_hour")?,
                per_number_day: parse(v, "limit_per_number_day")?,
                global_hour: parse(v, "limit_global_hour")?,
                global_day: parse(v, "limit_global_day")?,
            },
            clock_offset_secs: parse(v, "clock_offset_secs")?,
            calling_hours: parse(v, "calling_hours")?,
            quiet_action: parse(v, "quiet_hours_action")?,
            retry: RetryPolicy {
                retries: parse(v, "retry_attempts")?,
                spacing: Duration::from_secs(positive(v, "retry_spacing_secs")?),
            },
            machine: parse(v, "answering_machine")?,
        })
    }
}

/// Defaults, overridden by the file, overridden by the environment.
fn merged(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Values, ConfigError> {
    let mut values: Values =
        FIELDS.iter().filter_map(|(key, _, default)| default.map(|d| (*key, d.to_owned()))).collect();
    if let Some(path) = file {
        read_file(path, &mut values)?;
    }
    for (key, var, _) in FIELDS {
        if let Some(value) = env(var) {
            values.insert(key, value);
        }
    }
    Ok(values)
}

fn env_name(key: &str) -> &'static str {
    FIELDS.iter().find(|(k, _, _)| *k == key).map(|(_, env, _)| *env).unwrap_or("?")
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { env: env_name(key), reason: reason.into() }
}

fn optional(v: &Values, key: &str) -> Option<String> {
    v.get(key).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn required(v: &Values, key: &str) -> Result<String, ConfigError> {
    optional(v, key).ok_or(ConfigError::Missing {
        env: env_name(key),
        hint: "see the configuration table in README.md; `make run` sets up the simulator without an account",
    })
}

fn parse<T: std::str::FromStr>(v: &Values, key: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    required(v, key)?.parse().map_err(|e: T::Err| invalid(key, e.to_string()))
}

fn positive<T: std::str::FromStr + Default + PartialOrd>(v: &Values, key: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    let value: T = parse(v, key)?;
    if value <= T::default() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(value)
}

/// A comma-separated list, blanks dropped.
fn list(v: &Values, key: &str) -> Vec<String> {
    v.get(key).map_or_else(Vec::new, |text| {
        text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
    })
}

/// Longest sign-in accepted: a session that never ends is a cookie that is as good as the token.
const MAX_SESSION_SECS: u64 = 366 * 24 * 3600;

fn session_lifetime(v: &Values) -> Result<Duration, ConfigError> {
    let secs: u64 = positive(v, "session_secs")?;
    if secs > MAX_SESSION_SECS {
        return Err(invalid("session_secs", format!("must be at most {MAX_SESSION_SECS} (a year)")));
    }
    Ok(Duration::from_secs(secs))
}

/// Shortest anti-forgery secret accepted (32 bytes of key material for the HMAC).
const MIN_SECRET_LEN: usize = 32;

fn checked_secret(secret: &str) -> Result<Secret, ConfigError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(invalid("secret", format!("must be at least {MIN_SECRET_LEN} characters")));
    }
    Ok(Secret::new(secret))
}

/// Shortest access token accepted: anything shorter could be guessed.
const MIN_TOKEN_LEN: usize = 16;

fn checked_token(token: &str) -> Result<Secret, ConfigError> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(invalid("api_token", format!("must be at least {MIN_TOKEN_LEN} characters")));
    }
    Ok(Secret::new(token))
}

/// The allowed destination countries; by default only the caller id's own country.
fn countries(v: &Values) -> Result<Countries, ConfigError> {
    let Some(list) = optional(v, "allowed_countries") else {
        let from = PhoneNumber::parse(&required(v, "telnyx_from_number")?)
            .map_err(|e| invalid("telnyx_from_number", e.to_string()))?;
        return Ok(Countries::Only(from.region().into_iter().collect()));
    };
    if list == "*" {
        return Ok(Countries::Any);
    }
    let codes: Vec<String> = list.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
    if let Some(bad) = codes.iter().find(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic())) {
        return Err(invalid(
            "allowed_countries",
            format!("`{bad}` is not a two-letter country code (use e.g. IE,US or *)"),
        ));
    }
    Ok(Countries::Only(codes))
}

/// The number types that may be called although they are refused by default (none unless set).
fn number_types(v: &Values) -> Result<Vec<NumberType>, ConfigError> {
    let list = optional(v, "allowed_number_types").unwrap_or_default();
    let names = list.split(',').map(|name| name.trim().to_ascii_lowercase()).filter(|name| !name.is_empty());
    names.map(|name| name.parse().map_err(|e: String| invalid("allowed_number_types", e))).collect()
}

fn checked_url(url: &str, key: &str) -> Result<String, ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(key, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(key, "must be an http or https URL"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Reads the JSON file: an object whose keys are the field names (unknown keys are refused, so a
/// typo is caught instead of silently ignored).
fn read_file(path: &Path, values: &mut Values) -> Result<(), ConfigError> {
    let file_error = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| file_error(format!("not a JSON object: {e}")))?;
    for (key, value) in object {
        let Some((field, _, _)) = FIELDS.iter().find(|(k, _, _)| *k == key) else {
            return Err(file_error(format!("unknown key `{key}`")));
        };
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(","),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        values.insert(field, text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const ACCOUNT: &[(&str, &str)] = &[
        ("TELNYX_API_KEY", "KEY0123"),
        ("TELNYX_PUBLIC_KEY", "cQzLQBy26bKTWRwDFuHlAGPNWrb+pU6soOys9UyvO0k="),
        ("TELNYX_CONNECTION_ID", "1234"),
        ("TELNYX_FROM_NUMBER", "+353 1 234 5678"),
    ];

    #[test]
    fn an_account_in_the_environment_is_enough() {
        let config = Config::from_sources(None, env_of(ACCOUNT)).expect("valid");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.telnyx.from_number.as_str(), "+35312345678");
        assert_eq!(config.database_url.expose(), "sqlite://dialajoke.db");
    }

    #[test]
    fn a_missing_api_key_is_named() {
        let env: Vec<_> = ACCOUNT.iter().copied().filter(|(k, _)| *k != "TELNYX_API_KEY").collect();
        let error = Config::from_sources(None, env_of(&env)).expect_err("must fail").to_string();
        assert!(error.contains("TELNYX_API_KEY"), "{error}");
    }

    #[test]
    fn a_bad_bind_address_is_named() {
        let mut env = ACCOUNT.to_vec();
        env.push(("DIALAJOKE_BIND", "localhost"));
        let error = Config::from_sources(None, env_of(&env)).expect_err("must fail").to_string();
        assert!(error.contains("DIALAJOKE_BIND"), "{error}");
    }

    #[test]
    fn the_api_key_never_prints() {
        let config = Config::from_sources(None, env_of(ACCOUNT)).expect("valid");
        assert!(!format!("{config:?}").contains("KEY0123"));
    }

    #[test]
    fn the_database_password_never_prints() {
        let mut env = ACCOUNT.to_vec();
        env.push(("DIALAJOKE_DATABASE_URL", "postgres://jokes:s3cret@db.example.com:5432/jokes"));
        let config = Config::from_sources(None, env_of(&env)).expect("valid");

        for shown in [format!("{config:?}"), config.database_url.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert_eq!(config.database_url.to_string(), "postgres://…@db.example.com:5432/jokes");
        assert_eq!(config.database_url.expose(), "postgres://jokes:s3cret@db.example.com:5432/jokes");
    }

    #[test]
    fn no_number_type_refused_by_default_is_allowed_unless_named_and_unknown_names_are_refused() {
        let unset = Config::from_sources(None, env_of(ACCOUNT)).expect("valid");
        assert_eq!(unset.allowed_number_types, []);
        let mut env = ACCOUNT.to_vec();
        env.push(("DIALAJOKE_ALLOWED_NUMBER_TYPES", " Satellite, personal "));
        let set = Config::from_sources(None, env_of(&env)).expect("valid");
        assert_eq!(set.allowed_number_types, [NumberType::Satellite, NumberType::Personal]);
        env.push(("DIALAJOKE_ALLOWED_NUMBER_TYPES", "satellite,premium"));
        let error = Config::from_sources(None, env_of(&env)).expect_err("unknown type").to_string();
        assert!(error.contains("DIALAJOKE_ALLOWED_NUMBER_TYPES") && error.contains("premium"), "{error}");
    }

    #[test]
    fn a_caller_id_of_a_type_refused_as_a_destination_is_still_a_valid_caller_id() {
        let mut env = ACCOUNT.to_vec();
        env.push(("TELNYX_FROM_NUMBER", "+881 6 1234 5678"));
        env.push(("DIALAJOKE_ALLOWED_COUNTRIES", "IE"));
        let config = Config::from_sources(None, env_of(&env)).expect("valid");
        assert_eq!(config.telnyx.from_number.number_type(), Some(NumberType::Satellite));
    }

    #[test]
    fn no_limit_on_calls_at_once_unless_one_is_set() {
        let unset = Config::from_sources(None, env_of(ACCOUNT)).expect("valid");
        let mut env = ACCOUNT.to_vec();
        env.push(("DIALAJOKE_MAX_ACTIVE_CALLS", "10"));
        let set = Config::from_sources(None, env_of(&env)).expect("valid");
        assert_eq!((unset.max_active_calls, set.max_active_calls), (None, Some(10)));
    }

    #[test]
    fn calling_hours_retries_and_machines_have_their_defaults_and_bad_values_are_named() {
        let config = Config::from_sources(None, env_of(ACCOUNT)).expect("valid");
        assert_eq!(config.calling_hours, "08:00-21:00".parse().expect("hours"));
        assert_eq!(config.quiet_action, QuietAction::Defer);
        assert_eq!(config.retry, RetryPolicy { retries: 2, spacing: Duration::from_secs(600) });
        assert_eq!(config.machine, MachinePolicy::LeaveMessage);
        for (var, value) in [
            ("DIALAJOKE_CALLING_HOURS", "9 to 5"),
            ("DIALAJOKE_QUIET_HOURS_ACTION", "ignore"),
            ("DIALAJOKE_RETRY_SPACING_SECS", "0"),
            ("DIALAJOKE_ANSWERING_MACHINE", "voicemail"),
        ] {
            let mut env = ACCOUNT.to_vec();
            env.push((var, value));
            let error = Config::from_sources(None, env_of(&env)).expect_err("must fail").to_string();
            assert!(error.contains(var), "{error}");
        }
    }

    #[test]
    fn sessions_last_twelve_hours_cookies_follow_the_public_url_and_bad_values_are_named() {
        let config = Config::from_sources(None, env_of(ACCOUNT)).expect("valid");
        assert_eq!(config.session_ttl, Duration::from_secs(12 * 3600));
        assert!(config.secure_cookies.for_public_url("https://jokes.example"));
        assert!(!config.secure_cookies.for_public_url("http://127.0.0.1:8080"));
        let bad = [
            ("DIALAJOKE_SECURE_COOKIES", "yes"),
            ("DIALAJOKE_SECRET", "short"),
            ("DIALAJOKE_SESSION_SECS", "100000000"),
            ("DIALAJOKE_ALLOWED_HOSTS", "jokes.example.org/path"),
        ];
        for (var, value) in bad {
            let mut env = ACCOUNT.to_vec();
            env.push((var, value));
            let error = Config::from_sources(None, env_of(&env)).expect_err("must fail").to_string();
            assert!(error.contains(var), "{error}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"bnid": "127.0.0.1:1"}"#).expect("write");
        let error = Config::from_sources(Some(&path), env_of(ACCOUNT)).expect_err("must fail").to_string();
        assert!(error.contains("bnid"), "{error}");
    }
}

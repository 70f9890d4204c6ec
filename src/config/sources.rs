//! Where settings come from: one table names every setting's section and key in the file, its
//! environment variable and its default; the file is read into typed sections that refuse
//! unknown keys, and the environment is laid over it. Every value stays text until
//! [`super`] parses it, so a number in the file and the same number in the environment are read
//! by one parser and cannot mean different things.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// One setting: where it lives in the file, the variable that overrides it, and its default.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setting {
    /// The file's section, e.g. `server`.
    pub section: &'static str,
    /// The key within the section, e.g. `bind`.
    pub key: &'static str,
    /// The environment variable, e.g. `DIALAJOKE_BIND` (the public contract: never renamed).
    pub env: &'static str,
    /// The built-in value, if there is one.
    pub default: Option<&'static str>,
}

/// A setting's text, trimmed; None when it is unset or blank. The file may give it as a
/// string, a number, a boolean or a list of strings (joined with commas, as the environment
/// writes lists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Text(Option<String>);

impl Text {
    /// The text, when there is some.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    fn of(text: &str) -> Self {
        Self(Some(text.trim().to_owned()).filter(|text| !text.is_empty()))
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a string, a number, a boolean or a list of strings")]
        enum Given {
            Text(String),
            Integer(i64),
            Number(f64),
            Switch(bool),
            List(Vec<String>),
            Nothing(()),
        }
        Ok(match Given::deserialize(deserializer)? {
            Given::Text(text) => Self::of(&text),
            Given::Integer(number) => Self::of(&number.to_string()),
            Given::Number(number) => Self::of(&number.to_string()),
            Given::Switch(on) => Self::of(&on.to_string()),
            Given::List(items) => Self::of(&items.join(",")),
            Given::Nothing(()) => Self(None),
        })
    }
}

/// Declares the sections, their keys, variables and defaults once: the file's shape
/// ([`Sections`]) and the table of [`SETTINGS`] come from the same lines.
macro_rules! settings {
    ($(
        $(#[$doc:meta])*
        $section:ident: $Section:ident {
            $( $key:ident: $env:literal $(= $default:literal)? ),* $(,)?
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Default, Deserialize)]
            #[serde(default, deny_unknown_fields)]
            pub(super) struct $Section {
                $( pub $key: Text, )*
            }
        )*

        /// The file's shape: every section and key optional, unknown ones refused.
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(super) struct Sections {
            $( pub $section: $Section, )*
        }

        /// Every setting, in the order the README's table lists them.
        pub(super) const SETTINGS: &[Setting] = &[
            $($( Setting {
                section: stringify!($section),
                key: stringify!($key),
                env: $env,
                default: settings!(@default $($default)?),
            }, )*)*
        ];
    };
    (@default) => { None };
    (@default $default:literal) => { Some($default) };
}

settings! {
    /// Where the service listens and answers, and how this instance is known.
    server: Server {
        bind: "DIALAJOKE_BIND" = "127.0.0.1:8080",
        public_url: "DIALAJOKE_PUBLIC_URL",
        allowed_hosts: "DIALAJOKE_ALLOWED_HOSTS",
        cors_origins: "DIALAJOKE_CORS_ORIGINS",
        web_workers: "DIALAJOKE_WEB_WORKERS" = "0",
        shutdown_secs: "DIALAJOKE_SHUTDOWN_SECS" = "10",
        instance_id: "DIALAJOKE_INSTANCE_ID" = "single",
        clock_offset_secs: "DIALAJOKE_CLOCK_OFFSET_SECS" = "0",
    }
    /// Who may use the page and the API.
    access: Access {
        api_token: "DIALAJOKE_API_TOKEN",
        session_secs: "DIALAJOKE_SESSION_SECS" = "43200",
        secure_cookies: "DIALAJOKE_SECURE_COOKIES" = "auto",
        secret: "DIALAJOKE_SECRET",
    }
    /// Where calls and their history are kept.
    database: Database {
        url: "DIALAJOKE_DATABASE_URL" = "sqlite://dialajoke.db",
    }
    /// The Telnyx account and how its webhooks are trusted.
    telnyx: Telnyx {
        api_key: "TELNYX_API_KEY",
        public_key: "TELNYX_PUBLIC_KEY",
        connection_id: "TELNYX_CONNECTION_ID",
        from_number: "TELNYX_FROM_NUMBER",
        api_base: "TELNYX_API_BASE" = "https://api.telnyx.com/v2",
        timeout_secs: "DIALAJOKE_TELNYX_TIMEOUT_SECS" = "10",
        allow_unsigned_webhooks: "DIALAJOKE_ALLOW_UNSIGNED_WEBHOOKS" = "false",
    }
    /// Which calls may be scheduled and what they say.
    calls: Calls {
        jokes_url: "DIALAJOKE_JOKES_URL",
        voice: "DIALAJOKE_VOICE" = "Telnyx.KokoroTTS.af",
        language: "DIALAJOKE_LANGUAGE",
        horizon_days: "DIALAJOKE_HORIZON_DAYS" = "365",
        grace_secs: "DIALAJOKE_GRACE_SECS" = "600",
        ring_timeout_secs: "DIALAJOKE_RING_TIMEOUT_SECS" = "30",
        time_limit_secs: "DIALAJOKE_TIME_LIMIT_SECS" = "300",
        allowed_countries: "DIALAJOKE_ALLOWED_COUNTRIES",
        allowed_number_types: "DIALAJOKE_ALLOWED_NUMBER_TYPES",
    }
    /// How fast and how many at once the instances together dial, and how claims are held.
    dialing: Dialing {
        limit: "DIALAJOKE_DIAL_LIMIT" = "150",
        window_secs: "DIALAJOKE_DIAL_WINDOW_SECS" = "5",
        max_active_calls: "DIALAJOKE_MAX_ACTIVE_CALLS" = "0",
        lease_secs: "DIALAJOKE_LEASE_SECS" = "20",
    }
    /// How many calls may ring near one another.
    limits: Limits {
        per_number_hour: "DIALAJOKE_LIMIT_PER_NUMBER_HOUR" = "10",
        per_number_day: "DIALAJOKE_LIMIT_PER_NUMBER_DAY" = "30",
        global_hour: "DIALAJOKE_LIMIT_GLOBAL_HOUR" = "1000",
        global_day: "DIALAJOKE_LIMIT_GLOBAL_DAY" = "5000",
    }
    /// When callees may be rung, in their own time.
    calling_hours: CallingHours {
        allowed: "DIALAJOKE_CALLING_HOURS" = "08:00-21:00",
        quiet_action: "DIALAJOKE_QUIET_HOURS_ACTION" = "defer",
    }
    /// How busy and unanswered calls are tried again.
    retries: Retries {
        attempts: "DIALAJOKE_RETRY_ATTEMPTS" = "2",
        spacing_secs: "DIALAJOKE_RETRY_SPACING_SECS" = "600",
    }
    /// What happens when an answering machine picks up.
    answering_machine: AnsweringMachine {
        action: "DIALAJOKE_ANSWERING_MACHINE" = "message",
    }
}

/// The setting at `section.key` (a key of [`SETTINGS`], so always found).
pub(super) fn setting(path: &str) -> Setting {
    let found = SETTINGS.iter().find(|s| path.split_once('.') == Some((s.section, s.key)));
    *found.unwrap_or_else(|| panic!("`{path}` is not in the settings table"))
}

/// The defaults, overridden by the file, overridden by the environment, as typed sections.
pub(super) fn gather(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Sections, ConfigError> {
    let file_error = |path: &Path, reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let mut tree = match file {
        Some(path) => read(path).map_err(|reason| file_error(path, reason))?,
        None => serde_json::Map::new(),
    };
    for setting in SETTINGS {
        let given = env(setting.env);
        let Some(section) = tree.entry(setting.section).or_insert_with(|| serde_json::json!({})).as_object_mut() else {
            let path = file.unwrap_or(Path::new("?"));
            return Err(file_error(path, format!("`{}` must be an object of settings", setting.section)));
        };
        match (given, setting.default) {
            (Some(value), _) => {
                section.insert(setting.key.to_owned(), value.into());
            }
            (None, Some(default)) if section.get(setting.key).is_none_or(serde_json::Value::is_null) => {
                section.insert(setting.key.to_owned(), default.into());
            }
            _ => {}
        }
    }
    let sections = serde_json::from_value(serde_json::Value::Object(tree));
    sections.map_err(|e| file_error(file.unwrap_or(Path::new("?")), e.to_string()))
}

fn read(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a JSON object of sections: {e}"))
}

//! The configuration's sources, sections and checks, and the README's table of them.

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
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
    assert_eq!(config.server.bind.to_string(), "127.0.0.1:8080");
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
    assert_eq!(unset.calls.allowed_number_types, []);
    let mut env = ACCOUNT.to_vec();
    env.push(("DIALAJOKE_ALLOWED_NUMBER_TYPES", " Satellite, personal "));
    let set = Config::from_sources(None, env_of(&env)).expect("valid");
    assert_eq!(set.calls.allowed_number_types, [NumberType::Satellite, NumberType::Personal]);
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
    assert_eq!((unset.dialing.max_active_calls, set.dialing.max_active_calls), (None, Some(10)));
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
    assert_eq!(config.access.session_ttl, Duration::from_secs(12 * 3600));
    assert!(config.access.secure_cookies.for_public_url("https://jokes.example"));
    assert!(!config.access.secure_cookies.for_public_url("http://127.0.0.1:8080"));
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

fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.json");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

#[test]
fn unknown_sections_and_keys_in_the_file_are_refused() {
    for (text, unknown) in [
        (r#"{"server": {"bnid": "127.0.0.1:1"}}"#, "bnid"),
        (r#"{"sever": {"bind": "127.0.0.1:1"}}"#, "sever"),
        (r#"{"bind": "127.0.0.1:1"}"#, "bind"),
    ] {
        let (_dir, path) = file(text);
        let error = Config::from_sources(Some(&path), env_of(ACCOUNT)).expect_err("must fail").to_string();
        assert!(error.contains(&format!("unknown field `{unknown}`")), "{error}");
    }
}

#[test]
fn the_file_sets_typed_sections_and_the_environment_overrides_it() {
    let (_dir, path) = file(
        r#"{
            "server": {"bind": "127.0.0.1:9090", "cors_origins": ["https://a.example", "https://b.example"]},
            "dialing": {"limit": 30, "max_active_calls": 4},
            "calling_hours": {"allowed": "off"},
            "retries": {"attempts": 0},
            "telnyx": {"allow_unsigned_webhooks": true, "public_key": null}
        }"#,
    );
    let mut env = ACCOUNT.to_vec();
    env.push(("DIALAJOKE_DIAL_LIMIT", "40"));
    let config = Config::from_sources(Some(&path), env_of(&env)).expect("valid");
    assert_eq!(config.server.bind.to_string(), "127.0.0.1:9090");
    assert_eq!(config.server.cors_origins, ["https://a.example", "https://b.example"]);
    assert_eq!((config.dialing.limit, config.dialing.max_active_calls), (40, Some(4)));
    assert_eq!(config.calling_hours, CallingHours::Always);
    assert_eq!(config.retry.retries, 0);
    assert_eq!(config.telnyx.webhooks, WebhookTrust::Unsigned);
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(10), "a key the file leaves out keeps its default");
}

#[test]
fn a_bad_value_in_the_file_names_its_key_and_its_variable() {
    let (_dir, path) = file(r#"{"limits": {"per_number_day": "thirty"}}"#);
    let error = Config::from_sources(Some(&path), env_of(ACCOUNT)).expect_err("must fail").to_string();
    assert!(error.contains("limits.per_number_day") && error.contains("DIALAJOKE_LIMIT_PER_NUMBER_DAY"), "{error}");
}

#[test]
fn no_secret_prints_in_debug_or_display() {
    let mut env = ACCOUNT.to_vec();
    env.push(("DIALAJOKE_API_TOKEN", "token-0123456789abcdef"));
    env.push(("DIALAJOKE_SECRET", "secret-0123456789abcdef0123456789abcdef"));
    let config = Config::from_sources(None, env_of(&env)).expect("valid");
    let shown = format!("{config:?} {} {}", config.telnyx.api_key, config.access.secret.as_ref().expect("set"));
    for secret in ["KEY0123", "token-0123456789abcdef", "secret-0123456789abcdef"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn the_readme_table_gives_every_setting_its_variable_file_key_and_default() {
    let readme = include_str!("../../README.md");
    let rows: Vec<&str> = readme.lines().filter(|line| line.starts_with("| `")).collect();
    for setting in sources::SETTINGS {
        let key = format!("`{}.{}`", setting.section, setting.key);
        let row = rows.iter().find(|row| row.contains(&key));
        let row = row.unwrap_or_else(|| panic!("README.md has no row for {key}"));
        let short = setting.env.rsplit_once('_').map(|(_, tail)| format!("`_{tail}`"));
        assert!(
            row.contains(&format!("`{}`", setting.env)) || short.is_some_and(|short| row.contains(&short)),
            "README.md's row for {key} must name {}",
            setting.env
        );
        if let Some(default) = setting.default.filter(|default| !default.is_empty()) {
            assert!(row.contains(default), "README.md's row for {key} must give its default {default}");
        }
    }
}

#[test]
fn the_shipped_development_file_is_read_without_error() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.dev.json");
    let config = Config::from_sources(Some(&path), env_of(ACCOUNT)).expect("config.dev.json is valid");
    assert_eq!(config.database_url.expose(), "sqlite://dialajoke.db");
}

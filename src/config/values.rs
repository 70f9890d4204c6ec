//! The value types of settings that no lower layer owns: secrets that never print, the database
//! URL without its password, host names and the cookie switch.

use std::fmt;
use std::str::FromStr;

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

impl fmt::Display for Secret {
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

impl FromStr for HostName {
    type Err = String;

    /// `name` or `name:port`, read as a URL's host would be.
    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let url = reqwest::Url::parse(&format!("http://{entry}")).ok().filter(|url| {
            url.path() == "/" && url.username().is_empty() && url.query().is_none() && url.fragment().is_none()
        });
        url.as_ref().and_then(Self::of_url).ok_or_else(|| format!("`{entry}` is not a host name or host:port"))
    }
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

impl FromStr for SecureCookies {
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

//! The Host allow-list, against DNS rebinding: a page anywhere can point its own name at
//! 127.0.0.1 and have the operator's browser send it requests that are same-origin as far as the
//! browser knows. Such a request still names the attacker's host in `Host`, so only the names the
//! service really has are answered: its bind address (and the loopback names when it listens on
//! loopback or on every address), the public URL's host, and `DIALAJOKE_ALLOWED_HOSTS`. Load
//! balancers probe `/health` and `/ready` by whatever address they know, and those change
//! nothing and tell nothing, so they answer any Host.

use std::net::SocketAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::http::uri::Authority;
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;
use super::problem::ApiError;
use crate::config::HostName;

/// The names the service answers to.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<HostName>);

/// A `Host` header as lower-case name and optional port; None when unreadable.
fn parse(text: &str) -> Option<HostName> {
    let authority: Authority = text.trim().parse().ok()?;
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    Some(HostName { host, port: authority.port_u16() })
}

impl AllowedHosts {
    /// The names of a service listening on `bind`, reached at `public_url`, plus `configured`.
    pub fn new(bind: SocketAddr, public_url: &str, configured: &[HostName]) -> Self {
        let port = Some(bind.port());
        let mut allowed = Vec::new();
        if !bind.ip().is_unspecified() {
            allowed.push(HostName { host: host_of(bind), port });
        }
        if bind.ip().is_loopback() || bind.ip().is_unspecified() {
            allowed.extend(["localhost", "127.0.0.1", "[::1]"].map(|host| HostName { host: host.to_owned(), port }));
        }
        allowed.extend(reqwest::Url::parse(public_url).ok().as_ref().and_then(HostName::of_url));
        allowed.extend(configured.iter().cloned());
        Self(allowed)
    }

    /// True when a request with this `Host` is for this service. A Host without a port is the
    /// scheme's default one, which the service cannot tell apart behind a proxy: 80 or 443.
    fn allows(&self, host: &str) -> bool {
        let Some(given) = parse(host) else { return false };
        self.0.iter().any(|allowed| {
            allowed.host == given.host
                && match (allowed.port, given.port) {
                    (None, _) => true,
                    (Some(port), Some(given)) => port == given,
                    (Some(port), None) => port == 80 || port == 443,
                }
        })
    }
}

/// The address as a Host header names it: `1.2.3.4`, `[::1]`.
fn host_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    }
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready")
}

/// The Host middleware (see the module docs). A request without `Host` (HTTP/1.0) is no
/// browser's, so it passes.
pub async fn check_host(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let hosts = req.app_data::<web::Data<AppState>>().map(|state| &state.hosts);
    let host = req.headers().get(header::HOST).map(|value| value.to_str().unwrap_or_default().to_owned());
    let refused = match (hosts, host) {
        (Some(hosts), Some(host)) if !is_probe(req.path()) && !hosts.allows(&host) => Some(host),
        _ => None,
    };
    let Some(host) = refused else { return Ok(next.call(req).await?.map_into_left_body()) };
    let shown: String = host.chars().take(100).collect();
    tracing::warn!(host = %shown, "a request for another host name was refused");
    let error = ApiError::MisdirectedRequest(format!(
        "the Host header `{shown}` is not a name this service answers to; \
         an operator can add it to DIALAJOKE_ALLOWED_HOSTS"
    ));
    Ok(req.error_response(error).map_into_right_body())
}

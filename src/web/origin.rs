//! No state change from another site. A browser says where a request comes from: `Origin` on
//! every POST, PUT, PATCH and DELETE, and `Sec-Fetch-Site` in current browsers. A change passes
//! when the browser calls it same-origin, when `Origin` is this service's own (the request's
//! Host, or the public URL's origin behind a proxy) or one of the CORS origins, or when neither
//! header is there at all: then no browser sent it (curl, the SDKs), and the access token, not
//! this check, is what stands in the way. Anything else is another site using the operator's
//! browser, and is refused. `/webhook` is exempt: Telnyx posts it server to server, signed.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};

use super::AppState;
use super::problem::ApiError;

/// The origins other than the request's own Host that may change things.
#[derive(Debug, Clone, Default)]
pub struct TrustedOrigins(Vec<String>);

impl TrustedOrigins {
    /// The public URL's origin and the CORS origins.
    pub fn new(public_url: &str, cors_origins: &[String]) -> Self {
        let public = reqwest::Url::parse(public_url).ok().map(|url| url.origin().ascii_serialization());
        Self(public.into_iter().chain(cors_origins.iter().map(|o| o.trim_end_matches('/').to_owned())).collect())
    }

    fn trusts(&self, req: &HttpRequest, origin: &str) -> bool {
        let own = req.headers().get(header::HOST).and_then(|host| host.to_str().ok());
        let authority = origin.split_once("://").map(|(_, authority)| authority);
        own.zip(authority).is_some_and(|(own, authority)| own.eq_ignore_ascii_case(authority))
            || self.0.iter().any(|trusted| trusted.eq_ignore_ascii_case(origin))
    }
}

fn changes_state(req: &ServiceRequest) -> bool {
    matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE) && req.path() != "/webhook"
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).map(|value| value.to_str().unwrap_or("(unreadable)"))
}

/// Why this request is another site's, if it is.
fn cross_site(req: &HttpRequest, trusted: &TrustedOrigins) -> Option<String> {
    let site = header_text(req, header::HeaderName::from_static("sec-fetch-site"));
    if matches!(site, Some("same-origin" | "none")) {
        return None;
    }
    match (header_text(req, header::ORIGIN), site) {
        (Some(origin), _) if trusted.trusts(req, origin) => None,
        (Some(origin), _) => {
            let shown: String = origin.chars().take(100).collect();
            Some(format!("the Origin header `{shown}` is another site, and changes are only taken from this one"))
        }
        (None, Some(site)) => Some(format!(
            "the Sec-Fetch-Site header says `{}` and no Origin header names this site",
            site.chars().take(30).collect::<String>()
        )),
        (None, None) => None,
    }
}

/// The cross-site middleware (see the module docs).
pub async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let trusted = req.app_data::<web::Data<AppState>>().map(|state| &state.origins);
    let reason = trusted.filter(|_| changes_state(&req)).and_then(|trusted| cross_site(req.request(), trusted));
    let Some(reason) = reason else { return Ok(next.call(req).await?.map_into_left_body()) };
    tracing::warn!(reason, "a change from another site was refused");
    Ok(req.error_response(ApiError::Forbidden(reason)).map_into_right_body())
}

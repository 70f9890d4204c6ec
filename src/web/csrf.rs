//! Anti-forgery for the page's forms (double submit): every form carries a random token that must
//! equal the value of a SameSite=Strict, HttpOnly cookie, which another site can neither read nor
//! make the browser send.

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::HttpResponseBuilder;
use actix_web::cookie::{Cookie, SameSite};
use rand::RngCore;

use super::problem::ApiError;

const COOKIE: &str = "dialajoke_csrf";
/// Length of a token in hex digits (32 random bytes).
const TOKEN_LEN: usize = 64;

/// The token a page embeds in its forms.
pub struct Token {
    value: String,
    /// True when the browser had no valid cookie yet, so the response must set it.
    fresh: bool,
}

impl Token {
    /// The browser's token, or a new one when it has none.
    pub fn for_request(req: &HttpRequest) -> Self {
        match existing(req) {
            Some(value) => Self { value, fresh: false },
            None => {
                let mut bytes = [0u8; TOKEN_LEN / 2];
                rand::thread_rng().fill_bytes(&mut bytes);
                Self { value: bytes.iter().map(|b| format!("{b:02x}")).collect(), fresh: true }
            }
        }
    }

    /// The value the forms carry.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Sets the cookie on `response` when the browser does not have it yet.
    pub fn set_cookie_on(&self, response: &mut HttpResponseBuilder) {
        if self.fresh {
            let cookie = Cookie::build(COOKIE, self.value.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .finish();
            response.cookie(cookie);
        }
    }
}

/// The browser's token when its cookie holds a well-formed one.
pub fn existing(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).map(|cookie| cookie.value().to_owned()).filter(|value| value.len() == TOKEN_LEN)
}

/// Refuses a form whose token does not match the browser's cookie.
pub fn check(req: &HttpRequest, form: &HashMap<String, String>) -> Result<(), ApiError> {
    match (req.cookie(COOKIE), form.get("csrf_token")) {
        (Some(cookie), Some(sent)) if !sent.is_empty() && cookie.value() == sent => Ok(()),
        _ => Err(ApiError::Forbidden(
            "this form has expired or did not come from this site; reload the page and try again".into(),
        )),
    }
}

//! Anti-forgery for the page's forms (a signed double submit). Every form carries a token that
//! must equal the value of a SameSite=Strict, HttpOnly cookie, and the token is a random part
//! followed by an HMAC, under the server secret, of that part and the browser's session. A page
//! on a sibling site can plant a cookie and post the same value, but it cannot compute the HMAC;
//! a real pair taken from the open sign-in page is bound to no session, so it fails for a
//! signed-in browser. The secret is the same on every instance sharing the database, so a token
//! outlasts restarts and works whichever instance answers.

use std::collections::HashMap;
use std::fmt;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpMessage, HttpRequest, HttpResponseBuilder};

use super::auth::SignedIn;
use super::mac;
use super::problem::ApiError;

const COOKIE: &str = "dialajoke_csrf";
/// Hex digits of the random part (16 bytes) and of the tag (the HMAC's first 16 bytes).
const PART_LEN: usize = 32;
/// Bytes of a key made when none is configured.
const KEY_BYTES: usize = 32;

/// A new random key, for the store to keep as the server secret when it has none yet.
pub fn fresh_key() -> Vec<u8> {
    mac::random_bytes(KEY_BYTES)
}

/// How the page's anti-forgery tokens are made and checked.
pub struct Forms {
    key: Vec<u8>,
    /// Whether the cookie carries `Secure` (from configuration).
    secure: bool,
}

impl fmt::Debug for Forms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forms").field("key", &"[redacted]").field("secure", &self.secure).finish()
    }
}

/// The token a page embeds in its forms.
pub struct Token {
    value: String,
    /// True when the browser had no valid cookie yet, so the response must set it.
    fresh: bool,
    secure: bool,
}

impl Forms {
    /// Tokens signed with `key`; cookies `secure` or not.
    pub fn new(key: Vec<u8>, secure: bool) -> Self {
        Self { key, secure }
    }

    /// The browser's token, or a new one when it has none that is valid for this request.
    pub fn token_for(&self, req: &HttpRequest) -> Token {
        match self.existing(req) {
            Some(value) => Token { value, fresh: false, secure: self.secure },
            None => {
                let part = mac::hex(&mac::random_bytes(PART_LEN / 2));
                Token { value: self.sign(req, &part), fresh: true, secure: self.secure }
            }
        }
    }

    /// The browser's token when its cookie holds one that is valid for this request.
    pub fn existing(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(COOKIE).map(|cookie| cookie.value().to_owned()).filter(|value| self.verifies(req, value))
    }

    /// Refuses a form whose token does not match the browser's cookie or was not made by this
    /// service for this browser's session.
    pub fn check(&self, req: &HttpRequest, form: &HashMap<String, String>) -> Result<(), ApiError> {
        match (self.existing(req), form.get("csrf_token")) {
            (Some(cookie), Some(sent)) if mac::same(&cookie, sent) => Ok(()),
            _ => Err(ApiError::Forbidden(
                "this form has expired or did not come from this site; reload the page and try again".into(),
            )),
        }
    }

    /// `part` followed by its tag for this request's session.
    fn sign(&self, req: &HttpRequest, part: &str) -> String {
        let session = req.extensions().get::<SignedIn>().map(|s| s.key().to_owned()).unwrap_or_default();
        let tag = mac::tag(&self.key, &[b"dialajoke-csrf", part.as_bytes(), session.as_bytes()]);
        format!("{part}{}", mac::hex(&tag[..PART_LEN / 2]))
    }

    fn verifies(&self, req: &HttpRequest, value: &str) -> bool {
        value.len() == 2 * PART_LEN
            && value.is_char_boundary(PART_LEN)
            && mac::same(&self.sign(req, &value[..PART_LEN]), value)
    }
}

impl Token {
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
                .secure(self.secure)
                .finish();
            response.cookie(cookie);
        }
    }
}

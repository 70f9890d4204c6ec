//! ED25519 signatures on Telnyx webhooks: the check that every incoming webhook must pass before
//! anything else reads it, and the signing side the local Telnyx simulator and tests use.
//!
//! Telnyx signs the bytes `<telnyx-timestamp header>|<raw body>` and sends the standard-base64
//! signature in `telnyx-signature-ed25519`. The checks run in the same order as Telnyx's own SDKs
//! (headers, timestamp format, replay window, key, signature, verification), so each rejection
//! carries the reason an SDK would give.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// How far (in seconds, past or future) a webhook timestamp may be from our clock; exactly this
/// far still passes.
pub const TOLERANCE_SECS: i64 = 300;

/// Header carrying the base64 ED25519 signature.
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";

/// Header carrying the Unix time (seconds) the webhook was signed at.
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

/// Why a webhook signature was refused. Messages name no key material and are safe to show to the
/// sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header is absent.
    #[error("missing header telnyx-signature-ed25519")]
    MissingSignatureHeader,
    /// The timestamp header is absent.
    #[error("missing header telnyx-timestamp")]
    MissingTimestampHeader,
    /// The timestamp header is not a whole number of seconds.
    #[error("header telnyx-timestamp is not a Unix time in seconds")]
    InvalidTimestampFormat,
    /// The timestamp is further than [`TOLERANCE_SECS`] from now (stale or replayed).
    #[error("webhook timestamp is outside the accepted window")]
    TimestampOutsideTolerance,
    /// The configured public key is not standard base64.
    #[error("the webhook public key is not valid base64")]
    InvalidPublicKeyEncoding,
    /// The configured public key does not decode to 32 bytes.
    #[error("the webhook public key does not have 32 bytes")]
    InvalidPublicKeySize,
    /// The signature header is not standard base64 with padding.
    #[error("header telnyx-signature-ed25519 is not valid base64")]
    InvalidSignatureEncoding,
    /// The signature header does not decode to 64 bytes.
    #[error("header telnyx-signature-ed25519 does not hold a 64-byte signature")]
    InvalidSignatureSize,
    /// The signature does not match the timestamp and body.
    #[error("webhook signature does not match")]
    SignatureMismatch,
}

impl SignatureError {
    /// Stable snake_case name of the reason, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingSignatureHeader => "missing_signature_header",
            Self::MissingTimestampHeader => "missing_timestamp_header",
            Self::InvalidTimestampFormat => "invalid_timestamp_format",
            Self::TimestampOutsideTolerance => "timestamp_outside_tolerance",
            Self::InvalidPublicKeyEncoding => "invalid_public_key_encoding",
            Self::InvalidPublicKeySize => "invalid_public_key_size",
            Self::InvalidSignatureEncoding => "invalid_signature_encoding",
            Self::InvalidSignatureSize => "invalid_signature_size",
            Self::SignatureMismatch => "signature_mismatch",
        }
    }
}

/// The Telnyx account public key that webhooks are verified with.
///
/// Only its encoding and size are checked up front, as Telnyx's SDKs do; 32 bytes that are not a
/// point on the curve simply never verify anything (a signature mismatch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses the key as shown in the Telnyx portal: standard base64 of the raw 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, SignatureError> {
        let bytes = STANDARD.decode(encoded).map_err(|_| SignatureError::InvalidPublicKeyEncoding)?;
        bytes.try_into().map(Self).map_err(|_| SignatureError::InvalidPublicKeySize)
    }

    /// Checks a webhook: `signature` and `timestamp` are the header values (looked up
    /// case-insensitively by the caller), `body` the raw bytes exactly as received, `now_unix`
    /// the current Unix time in seconds.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        let fresh = FreshHeaders::check(signature, timestamp, now_unix)?;
        self.verify_fresh(&fresh, body)
    }

    /// The checks that follow the key check: signature shape, then the signature itself.
    fn verify_fresh(&self, fresh: &FreshHeaders<'_>, body: &[u8]) -> Result<(), SignatureError> {
        let signature = decode_signature(fresh.signature)?;
        let message = signed_message(fresh.timestamp, body);
        // Strict verification also refuses malleable signatures and weak keys.
        VerifyingKey::from_bytes(&self.0)
            .and_then(|key| key.verify_strict(&message, &signature))
            .map_err(|_| SignatureError::SignatureMismatch)
    }
}

/// Runs the whole check with a key still in its base64 form, in the SDKs' order: a bad key is only
/// reported once the headers and the timestamp window have passed.
pub fn verify_with_encoded_key(
    public_key_base64: &str,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let fresh = FreshHeaders::check(signature, timestamp, now_unix)?;
    PublicKey::from_base64(public_key_base64)?.verify_fresh(&fresh, body)
}

/// Header values that are present and carry a timestamp inside the window.
struct FreshHeaders<'a> {
    signature: &'a str,
    /// The header exactly as received: the signed message uses these bytes, not a re-rendering.
    timestamp: &'a str,
}

impl<'a> FreshHeaders<'a> {
    fn check(signature: Option<&'a str>, timestamp: Option<&'a str>, now_unix: i64) -> Result<Self, SignatureError> {
        let signature = signature.ok_or(SignatureError::MissingSignatureHeader)?;
        let timestamp = timestamp.ok_or(SignatureError::MissingTimestampHeader)?;
        let signed_at = parse_unix_seconds(timestamp)?;
        if now_unix.abs_diff(signed_at) > TOLERANCE_SECS.unsigned_abs() {
            return Err(SignatureError::TimestampOutsideTolerance);
        }
        Ok(Self { signature, timestamp })
    }
}

/// Accepts only plain decimal digits: signs, spaces or fractions never appear in what Telnyx sends.
fn parse_unix_seconds(value: &str) -> Result<i64, SignatureError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestampFormat);
    }
    value.parse().map_err(|_| SignatureError::InvalidTimestampFormat)
}

fn decode_signature(encoded: &str) -> Result<ed25519_dalek::Signature, SignatureError> {
    // STANDARD refuses the URL-safe alphabet, stray characters and missing padding.
    let bytes = STANDARD.decode(encoded).map_err(|_| SignatureError::InvalidSignatureEncoding)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::InvalidSignatureSize)?;
    Ok(ed25519_dalek::Signature::from_bytes(&bytes))
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    message
}

/// Signs webhooks the way Telnyx does; used by the simulator and by tests.
#[derive(Clone)]
pub struct Signer(SigningKey);

impl Signer {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key pair derived from a 32-byte secret seed (reproducible keys for tests).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The public key in the form the service is configured with.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.0.verifying_key().as_bytes())
    }

    /// The `telnyx-signature-ed25519` header value for a body sent with `telnyx-timestamp: timestamp`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        use ed25519_dalek::Signer as _;
        let message = signed_message(&timestamp.to_string(), body);
        STANDARD.encode(self.0.sign(&message).to_bytes())
    }
}

impl std::fmt::Debug for Signer {
    // Only the public half: the secret must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("public_key", &self.public_key_base64()).finish_non_exhaustive()
    }
}

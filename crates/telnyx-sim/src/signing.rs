//! The simulator's own webhook signing key: Ed25519 over `<timestamp>|<body>`, base64 in the
//! `telnyx-signature-ed25519` header, exactly as Telnyx signs with the account key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use rand::rngs::OsRng;

pub(crate) struct Signer {
    key: SigningKey,
}

impl Signer {
    /// A signer from a fixed seed, or from a fresh random key.
    pub(crate) fn new(seed: Option<[u8; 32]>) -> Self {
        let key = match seed {
            Some(seed) => SigningKey::from_bytes(&seed),
            None => SigningKey::generate(&mut OsRng),
        };
        Self { key }
    }

    /// The public key as the Telnyx portal shows it: base64 of the raw 32 bytes.
    pub(crate) fn public_key_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// The `telnyx-signature-ed25519` value for a body sent with `timestamp`.
    pub(crate) fn sign(&self, timestamp: i64, body: &str) -> String {
        let message = format!("{timestamp}|{body}");
        STANDARD.encode(self.key.sign(message.as_bytes()).to_bytes())
    }
}

//! Everything about speaking to Telnyx and understanding what it sends: the Call Control v2
//! client (dial, speak, hang up, with safe retries), the ED25519 webhook signature check, and the
//! lenient reading of webhook bodies.

pub mod client;
mod commands;
mod error;
mod retry;
pub mod signature;
pub mod webhook;

pub use client::{
    ClientConfig, DialAccepted, DialRequest, HangupRequest, RetriesPolicy, SpeakRequest, TelnyxClient, TelnyxError,
};
pub use signature::{PublicKey, SignatureError, Signer, verify_with_encoded_key};
pub use webhook::{EventKind, Webhook, WebhookError, decode_client_state};

//! Keyed hashes and random values for the cookies: one HMAC-SHA256 and one random generator for
//! the anti-forgery tokens and the session keys, so neither module rolls its own.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// HMAC-SHA256 of `parts` under `key`; each part is length-prefixed, so no two different lists
/// of parts hash alike.
pub fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("an HMAC takes a key of any length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `len` random bytes from the operating system's generator.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Compares in constant time, so a guess learns nothing from how long the answer took.
pub fn same(expected: &str, given: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
}

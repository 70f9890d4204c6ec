//! The webhook signature check against the 35 shared Telnyx vectors, and the signer against it.

use dialajoke::telnyx::signature::{
    PublicKey, SIGNATURE_HEADER, SignatureError, Signer, TIMESTAMP_HEADER, TOLERANCE_SECS, verify_with_encoded_key,
};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/telnyx/webhook-vectors.json");
    let text = std::fs::read_to_string(path).expect("vector file is readable");
    let doc: Value = serde_json::from_str(&text).expect("vector file is JSON");
    doc["vectors"].as_array().expect("vectors array").clone()
}

/// Header lookup as a web framework does it: names compare case-insensitively.
fn header<'a>(vector: &'a Value, name: &str) -> Option<&'a str> {
    vector["headers"]
        .as_object()
        .expect("headers object")
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
}

fn check(vector: &Value) -> Result<(), SignatureError> {
    verify_with_encoded_key(
        vector["public_key_b64"].as_str().expect("key"),
        header(vector, SIGNATURE_HEADER),
        header(vector, TIMESTAMP_HEADER),
        vector["payload"].as_str().expect("payload").as_bytes(),
        vector["now"].as_i64().expect("now"),
    )
}

#[test]
fn every_vector_gives_its_expected_result_and_reason() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 35);
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|vector| {
            let got = check(vector).err().map_or("valid", |e| e.reason());
            let expected = vector["expected_reason"].as_str().expect("reason");
            let valid_matches = (got == "valid") == (vector["expected"] == "valid");
            (got != expected || !valid_matches).then(|| format!("{}: expected {expected}, got {got}", vector["id"]))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_parsed_public_key_agrees_with_the_encoded_key_check_on_every_vector() {
    for vector in vectors() {
        let Ok(key) = PublicKey::from_base64(vector["public_key_b64"].as_str().expect("key")) else {
            continue;
        };
        let via_key = key.verify(
            header(&vector, SIGNATURE_HEADER),
            header(&vector, TIMESTAMP_HEADER),
            vector["payload"].as_str().expect("payload").as_bytes(),
            vector["now"].as_i64().expect("now"),
        );
        assert_eq!(via_key, check(&vector), "{}", vector["id"]);
    }
}

#[test]
fn a_body_signed_by_the_signer_verifies_with_its_public_key() {
    let signer = Signer::generate();
    let key = PublicKey::from_base64(&signer.public_key_base64()).expect("own key parses");
    let body = br#"{"data":{"id":"e1","event_type":"call.answered"}}"#;
    let signature = signer.sign(1_767_225_600, body);

    let result = key.verify(Some(&signature), Some("1767225600"), body, 1_767_225_610);

    assert_eq!(result, Ok(()));
}

#[test]
fn a_signature_from_another_signer_is_a_mismatch() {
    let key = PublicKey::from_base64(&Signer::generate().public_key_base64()).expect("key");
    let signature = Signer::generate().sign(100, b"{}");

    let result = key.verify(Some(&signature), Some("100"), b"{}", 100);

    assert_eq!(result, Err(SignatureError::SignatureMismatch));
}

#[test]
fn a_seeded_signer_reproduces_the_official_test_key() {
    let seed: [u8; 32] = base64_seed("i1xxSkIuQOY9H8laaRslIoYGTJ1NwBAFdjsQwiwJH04=");

    let signer = Signer::from_seed(&seed);

    assert_eq!(signer.public_key_base64(), "jrMBoswHlhhVx2W2Www72WU/xn4UMpjreslD0m2u0qs=");
    assert_eq!(
        signer.sign(1_767_225_600, br#"{"event_type":"test","id":"abc123"}"#),
        "a8Tuvf5RkWy5VHe+u5tSsT8kHfU6J4UIznb4mD0f6Tcpt/E5hc/zvmWF3jey8l0+39INPxTqh1dMa0bqjrzsAg=="
    );
}

#[test]
fn the_window_edge_is_inclusive_on_both_sides_and_one_more_second_fails() {
    let signer = Signer::generate();
    let key = PublicKey::from_base64(&signer.public_key_base64()).expect("key");
    let signature = signer.sign(10_000, b"{}");
    let at = |now| key.verify(Some(&signature), Some("10000"), b"{}", now);

    assert_eq!(at(10_000 + TOLERANCE_SECS), Ok(()));
    assert_eq!(at(10_000 - TOLERANCE_SECS), Ok(()));
    assert_eq!(at(10_000 + TOLERANCE_SECS + 1), Err(SignatureError::TimestampOutsideTolerance));
}

#[test]
fn error_messages_and_debug_output_reveal_no_secret_or_signature() {
    let seed_b64 = "u14OgngP5Zo5OOGjE90k9JXF9Iw09n/oRrTnrspm+ws=";
    let signer = Signer::from_seed(&base64_seed(seed_b64));
    let signature = signer.sign(5, b"{}");

    let err = verify_with_encoded_key(&signer.public_key_base64(), Some(&signature), Some("5"), b"{x}", 5)
        .expect_err("tampered body");

    let shown = format!("{err} {err:?} {signer:?}");
    assert!(!shown.contains(&signature));
    assert!(!shown.contains(seed_b64));
    assert_eq!(err.reason(), "signature_mismatch");
}

fn base64_seed(encoded: &str) -> [u8; 32] {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("seed is base64")
        .try_into()
        .expect("seed is 32 bytes")
}

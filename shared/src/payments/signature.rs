//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>`
//! where each `v1` is HMAC-SHA256 of `"<t>." + raw body`, keyed with the
//! whole `whsec_...` secret (unlike Standard Webhooks, which base64-decodes
//! its secret). Any `v1` may match (Stripe sends one per live secret while
//! one is being rolled); a timestamp more than [`TOLERANCE_SECONDS`] away from now
//! is refused, so a captured delivery cannot be replayed later.

use ring::hmac;

/// How far a signature's timestamp may be from now, as Stripe's libraries.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("signature timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` against the raw `body` at unix time `now`.
pub fn verify(header: Option<&str>, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", value)) => candidates.push(value),
            // v0 (test-mode legacy) and unknown schemes are ignored.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = Vec::with_capacity(body.len() + 12);
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    // `hmac::verify` compares in constant time.
    let matches = candidates
        .iter()
        .filter_map(|hex| decode_hex(hex))
        .any(|signature| hmac::verify(&key, &signed, &signature).is_ok());
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The header Stripe would send for `body` at `timestamp` (tests, and the
/// load tool's own deliveries).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(BODY, SECRET, 1_000_000);
        assert_eq!(verify(Some(&header), BODY, SECRET, 1_000_100), Ok(()));
    }

    #[test]
    fn a_vector_computed_elsewhere_verifies() {
        // HMAC-SHA256 keyed "whsec_test_secret" of "1000000." + BODY, by
        // Python's hmac module.
        let header = "t=1000000,v1=d0137aae5a5619ddb1cc09594faa24fc13cce8cc7d0dcbf861bfe50c521bd5b9";
        assert_eq!(sign(BODY, SECRET, 1_000_000), header);
        assert_eq!(verify(Some(header), BODY, SECRET, 1_000_000), Ok(()));
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let good = sign(BODY, SECRET, 1_000_000);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=1000000,v0=abcd,v1={},v1={v1}", "00".repeat(32));
        assert_eq!(verify(Some(&header), BODY, SECRET, 1_000_000), Ok(()));
    }

    #[test]
    fn a_changed_body_another_secret_or_an_old_timestamp_is_refused() {
        let header = sign(BODY, SECRET, 1_000_000);
        assert_eq!(verify(Some(&header), b"{}", SECRET, 1_000_000), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), BODY, "whsec_other", 1_000_000), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), BODY, SECRET, 1_000_301), Err(SignatureError::Stale));
        assert_eq!(verify(Some(&header), BODY, SECRET, 999_699), Err(SignatureError::Stale));
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(verify(None, BODY, SECRET, 0), Err(SignatureError::Missing));
        for header in ["", "t=abc,v1=00", "v1=00", "t=1", "garbage"] {
            assert!(verify(Some(header), BODY, SECRET, 1).is_err(), "{header}");
        }
        let odd = "t=1000000,v1=abc";
        assert_eq!(verify(Some(odd), BODY, SECRET, 1_000_000), Err(SignatureError::Mismatch));
    }
}

//! Opaque, signed paging cursors.
//!
//! A cursor is `base64url(json).base64url(hmac)`, signed with a key derived
//! from the service secret and bound to the query it belongs to. A client
//! can hold it and send it back, but any change to it, or its use with other
//! filters, is a 400, never a surprising page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Signs and checks cursors.
pub struct CursorCodec {
    key: hmac::Key,
}

impl CursorCodec {
    /// `secret` is the service's JWT secret; the label keeps a cursor's
    /// signature from ever being valid as anything else.
    pub fn new(secret: &[u8]) -> Self {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), b"shop paging cursor key v1");
        CursorCodec { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// The cursor for `position` in the listing identified by `scope`.
    pub fn encode<T: Serialize>(&self, scope: &str, position: &T) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        let tag = hmac::sign(&self.key, &signed_message(scope, &payload));
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The position in `cursor`, if it was issued for `scope` unchanged.
    pub fn decode<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> Result<T, ApiError> {
        let invalid =
            || ApiError::bad_request("invalid cursor: use nextCursor exactly as returned, with the same filters");
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        hmac::verify(&self.key, &signed_message(scope, &payload), &tag).map_err(|_| invalid())?;
        serde_json::from_slice(&payload).map_err(|_| invalid())
    }
}

fn signed_message(scope: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(scope.len() + payload.len() + 1);
    message.extend_from_slice(scope.as_bytes());
    message.push(0);
    message.extend_from_slice(payload);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CursorCodec {
        CursorCodec::new(b"a-cursor-test-secret-a-cursor-test-secret")
    }

    #[test]
    fn a_cursor_decodes_to_its_position() {
        let cursor = codec().encode("category=books", &(42u64, "abc"));
        assert_eq!(codec().decode::<(u64, String)>("category=books", &cursor).unwrap(), (42, "abc".into()));
    }

    #[test]
    fn a_tampered_or_foreign_cursor_is_a_bad_request() {
        let cursor = codec().encode("q=lamp", &7u64);
        let (payload, tag) = cursor.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(b"8");
        for bad in [
            format!("{forged_payload}.{tag}"),
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            "garbage".to_owned(),
            format!("{payload}."),
            String::new(),
        ] {
            assert_eq!(codec().decode::<u64>("q=lamp", &bad).unwrap_err().status(), 400, "{bad}");
        }
        assert_eq!(codec().decode::<u64>("q=desk", &cursor).unwrap_err().status(), 400, "another query's cursor");
        let other = CursorCodec::new(b"another-secret-another-secret-another-secret");
        assert_eq!(other.decode::<u64>("q=lamp", &cursor).unwrap_err().status(), 400);
    }
}

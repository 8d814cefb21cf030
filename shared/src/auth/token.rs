//! HS256 JSON Web Tokens carrying `sub`, `role`, `exp`, `iat` and `jti`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Role, User, UserId};

/// The claims of a token this service issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Token id: what logout revokes.
    pub jti: String,
    /// The user's session version at issue: a password change moves the
    /// user's on and so retires this token. Absent in tokens issued before
    /// the claim existed, which were all issued under version 0.
    #[serde(default)]
    pub ver: u32,
}

impl Claims {
    pub fn user_id(&self) -> Option<UserId> {
        UserId::parse(&self.sub)
    }

    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.exp).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// A freshly signed token.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

/// Why a presented token was refused. Every variant is a 401; the variants
/// exist for the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token has expired")]
    Expired,
    #[error("token is invalid")]
    Invalid,
}

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenService {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        super::jwt_hmac::install();
        // HS256 only: a token whose header names another algorithm, `none`
        // included, is refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        // Issuer and verifier are the same service, so no clock-skew leeway:
        // a token is dead the second it expires.
        validation.leeway = 0;
        TokenService {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user: &User) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            iat: now,
            jti: Uuid::new_v4().to_string(),
            ver: user.session_version,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken { token, claims })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(|err| {
            match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use crate::domain::{Email, UserName, UserStatus};

    const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";

    fn user(role: Role) -> User {
        let now = OffsetDateTime::now_utc();
        User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").unwrap(),
            name: UserName::parse("Ada").unwrap(),
            role,
            password_hash: String::new(),
            status: UserStatus::Active,
            session_version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    fn service() -> TokenService {
        TokenService::new(SECRET, Duration::from_secs(3600))
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let user = user(Role::Admin);
        let issued = service().issue(&user).unwrap();
        let claims = service().verify(&issued.token).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.user_id(), Some(user.id));
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn a_token_carries_its_users_session_version() {
        let mut user = user(Role::Customer);
        user.session_version = 3;
        let token = service().issue(&user).unwrap().token;
        assert_eq!(service().verify(&token).unwrap().ver, 3);
    }

    #[test]
    fn a_token_from_before_session_versions_is_at_version_zero() {
        let claims = service().issue(&user(Role::Customer)).unwrap().claims;
        let mut payload = serde_json::to_value(&claims).unwrap();
        payload.as_object_mut().unwrap().remove("ver");
        let token = encode(&Header::new(Algorithm::HS256), &payload, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(service().verify(&token).unwrap().ver, 0);
    }

    #[test]
    fn each_token_has_its_own_id() {
        let user = user(Role::Customer);
        assert_ne!(service().issue(&user).unwrap().claims.jti, service().issue(&user).unwrap().claims.jti);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let other = TokenService::new(b"another-secret-another-secret-another", Duration::from_secs(60));
        let token = other.issue(&user(Role::Customer)).unwrap().token;
        assert_eq!(service().verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let mut claims = service().issue(&user(Role::Customer)).unwrap().claims;
        claims.exp = OffsetDateTime::now_utc().unix_timestamp() - 1;
        let token = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(service().verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let token = service().issue(&user(Role::Customer)).unwrap().token;
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["role"] = "admin".into();
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
        assert_eq!(service().verify(&forged), Err(TokenError::Invalid));
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        let claims = service().issue(&user(Role::Admin)).unwrap().claims;
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims).unwrap());
        assert_eq!(service().verify(&format!("{header}.{payload}.")), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_invalid() {
        for token in ["", "abc", "a.b.c", "....."] {
            assert_eq!(service().verify(token), Err(TokenError::Invalid));
        }
    }
}

//! HS256 for `jsonwebtoken`, computed by `ring`.
//!
//! `jsonwebtoken` keeps its cryptography behind a pluggable provider. Its
//! built-in ones bring either aws-lc (C, about a megabyte per binary) or the
//! RustCrypto RSA and elliptic-curve crates; this service signs with one
//! HMAC secret only, and `ring` is already linked for TLS. So this provider
//! knows HS256 and refuses every other algorithm, which also makes an
//! algorithm-confusion attack impossible below the validation layer.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::hmac;

static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: hs256_signer,
    verifier_factory: hs256_verifier,
    // No JWK handling: keys are never exchanged as JWKs here.
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes this module the process's `jsonwebtoken` provider. Idempotent.
pub fn install() {
    // Err means a provider is installed already: this one, by an earlier
    // call, since nothing else in the service installs one.
    let _ = HS256_ONLY.install_default();
}

struct Hs256(hmac::Key);

impl Hs256 {
    fn new(algorithm: &Algorithm, family: AlgorithmFamily, secret: Result<&[u8]>) -> Result<Self> {
        if *algorithm != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
            return Err(Error::from(ErrorKind::InvalidAlgorithm));
        }
        Ok(Hs256(hmac::Key::new(hmac::HMAC_SHA256, secret?)))
    }
}

fn hs256_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(Hs256::new(algorithm, key.family(), Ok(key.as_bytes()))?))
}

fn hs256_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(Hs256::new(algorithm, key.family(), key.try_get_as_bytes())?))
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, message).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    /// Constant-time comparison, by `ring`.
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        hmac::verify(&self.0, message, tag).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";

    #[test]
    fn the_tag_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        install();
        let signer = hs256_signer(&Algorithm::HS256, &EncodingKey::from_secret(b"Jefe")).unwrap();
        let tag = signer.try_sign(b"what do ya want for nothing?").unwrap();
        let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn a_tag_verifies_and_a_changed_message_or_tag_does_not() {
        let key = DecodingKey::from_secret(SECRET);
        let signer = hs256_signer(&Algorithm::HS256, &EncodingKey::from_secret(SECRET)).unwrap();
        let verifier = hs256_verifier(&Algorithm::HS256, &key).unwrap();
        let tag = signer.try_sign(b"header.payload").unwrap();
        assert!(verifier.verify(b"header.payload", &tag).is_ok());
        assert!(verifier.verify(b"header.payloaD", &tag).is_err());
        let mut bent = tag.clone();
        bent[0] ^= 1;
        assert!(verifier.verify(b"header.payload", &bent).is_err());
    }

    #[test]
    fn every_other_algorithm_is_refused() {
        for algorithm in [Algorithm::HS384, Algorithm::HS512, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            assert!(hs256_signer(&algorithm, &EncodingKey::from_secret(SECRET)).is_err(), "{algorithm:?}");
            assert!(hs256_verifier(&algorithm, &DecodingKey::from_secret(SECRET)).is_err(), "{algorithm:?}");
        }
    }
}

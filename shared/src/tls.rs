//! The root certificates the process's TLS clients trust (DynamoDB and the
//! other AWS services, the cache over `rediss://`).
//!
//! By default Mozilla's roots, compiled into the binary: a function's init
//! reads no certificate file or directory (the system's store, scanned file
//! by file, was about 5 ms of every cold start). An operator who names a
//! trust store with `SSL_CERT_FILE` or `SSL_CERT_DIR` (a private CA, a
//! TLS-inspecting proxy) gets exactly that store instead.
//!
//! Webhook deliveries trust the compiled-in roots only (see
//! [`crate::webhooks`]): the receivers are on the public internet.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;

/// Where the trusted roots come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// Mozilla's, compiled in.
    Compiled,
    /// The store `SSL_CERT_FILE` / `SSL_CERT_DIR` names.
    Named,
}

impl RootSource {
    /// What this process's environment asks for.
    pub fn from_env() -> RootSource {
        let named = |name| std::env::var_os(name).is_some_and(|value| !value.is_empty());
        if named("SSL_CERT_FILE") || named("SSL_CERT_DIR") { RootSource::Named } else { RootSource::Compiled }
    }
}

/// The trusted roots as one PEM bundle, what the SDK's and the cache's
/// clients take. An operator-named store that cannot be read, or holds no
/// certificate, gives an empty bundle: every TLS connection then fails
/// (and says why), rather than silently trusting something else.
pub fn trusted_roots_pem(source: RootSource) -> Vec<u8> {
    match source {
        RootSource::Compiled => pem_bundle(webpki_root_certs::TLS_SERVER_ROOT_CERTS),
        RootSource::Named => {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "reading the trust store SSL_CERT_FILE / SSL_CERT_DIR name");
            }
            if loaded.certs.is_empty() {
                tracing::warn!("the trust store SSL_CERT_FILE / SSL_CERT_DIR name holds no certificate");
            }
            pem_bundle(&loaded.certs)
        }
    }
}

fn pem_bundle(certificates: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut pem = Vec::with_capacity(certificates.iter().map(|c| c.len() * 4 / 3 + 80).sum());
    for certificate in certificates {
        let encoded = STANDARD.encode(certificate.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn the_compiled_in_bundle_reads_back_as_mozillas_roots() {
        let pem = trusted_roots_pem(RootSource::Compiled);
        let read: Vec<_> = CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(read.len() > 100, "{} roots", read.len());
        assert!(read.iter().zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS).all(|(a, b)| a == b));
        let mut store = rustls::RootCertStore::empty();
        let (valid, invalid) = store.add_parsable_certificates(read);
        assert_eq!((valid, invalid), (webpki_root_certs::TLS_SERVER_ROOT_CERTS.len(), 0));
    }
}

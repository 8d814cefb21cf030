//! The API reference: `GET /docs`, a Swagger UI page rendering
//! `openapi.yaml`, and `GET /openapi.yaml`, the document itself.
//!
//! Swagger UI (npm `swagger-ui-dist`, vendored under `shared/assets/` by
//! `local-stack/docs-assets.sh`, licence beside it) is inlined into the
//! page: nothing loads from a CDN, and one route serves the whole page.
//! Only this page relaxes the Content-Security-Policy, and as little as it
//! can: its scripts are allowed by their SHA-256 hashes, styles inline
//! (Swagger UI sets style attributes), fetches to this origin only.
//!
//! The page is large (about 1.9 MB), so it is built and compressed once per
//! process and served in the coding the client accepts; the API functions
//! are built without this module (feature `docs`) and stay small.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::error::ApiError;
use crate::http::compression::{self, Coding};

const BUNDLE: &str = include_str!("../../assets/swagger-ui/swagger-ui-bundle.js");
const STYLES: &str = include_str!("../../assets/swagger-ui/swagger-ui.css");
const DOCUMENT: &str = include_str!("../../../openapi.yaml");
/// Relative to `/docs`, so it resolves wherever the API is mounted.
const BOOT: &str =
    r##"window.ui = SwaggerUIBundle({ url: "openapi.yaml", dom_id: "#swagger-ui", deepLinking: true });"##;

struct Page {
    csp: String,
    plain: Vec<u8>,
    gzip: Vec<u8>,
    brotli: Vec<u8>,
}

fn page() -> &'static Page {
    static PAGE: OnceLock<Page> = OnceLock::new();
    PAGE.get_or_init(|| {
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Shop API reference</title><style>{STYLES}</style></head>\
             <body><div id=\"swagger-ui\"></div><script>{BUNDLE}</script><script>{BOOT}</script></body></html>"
        );
        let csp = format!(
            "default-src 'none'; script-src {} {}; style-src 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            script_hash(BUNDLE),
            script_hash(BOOT)
        );
        let plain = html.into_bytes();
        let gzip = compression::encode(&plain, Coding::Gzip).unwrap_or_default();
        let brotli = compression::encode(&plain, Coding::Brotli).unwrap_or_default();
        Page { csp, plain, gzip, brotli }
    })
}

/// A CSP source allowing one inline script by its content.
fn script_hash(script: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(digest.as_ref()))
}

/// `GET /docs`: the page, in the coding `Accept-Encoding` asks for.
pub fn page_response(request: &Request) -> Result<Response<Body>, ApiError> {
    let page = page();
    let accepted = request.headers().get(http::header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
    let (body, coding) = match compression::negotiate(accepted) {
        Coding::Brotli if !page.brotli.is_empty() => (&page.brotli, Some("br")),
        Coding::Gzip | Coding::Brotli if !page.gzip.is_empty() => (&page.gzip, Some("gzip")),
        _ => (&page.plain, None),
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(http::header::CACHE_CONTROL, "public, max-age=300")
        .header(http::header::CONTENT_SECURITY_POLICY, page.csp.as_str())
        .body(Body::Binary(body.clone()))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(coding) = coding {
        response.headers_mut().insert(http::header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    Ok(response)
}

/// `GET /openapi.yaml`: the API document the page renders.
pub fn document_response() -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/yaml")
        .header(http::header::CACHE_CONTROL, "public, max-age=300")
        .body(Body::Text(DOCUMENT.to_owned()))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_assets_can_be_inlined() {
        assert!(!BUNDLE.contains("</script"), "the bundle would end its <script> early");
        assert!(!STYLES.contains("</style"), "the styles would end their <style> early");
    }

    #[test]
    fn the_page_allows_exactly_its_own_scripts() {
        let csp = &page().csp;
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
        assert!(!csp.contains("script-src 'unsafe-inline'") && !csp.contains("http"), "{csp}");
        let plain = String::from_utf8(page().plain.clone()).unwrap();
        assert!(plain.contains("<div id=\"swagger-ui\"></div>"));
    }
}

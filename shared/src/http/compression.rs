//! Response compression, in the shared response path so that a Lambda
//! function and `shop-local` answer alike (API Gateway's HTTP APIs do not
//! compress).
//!
//! - The coding follows the request's `Accept-Encoding` with its q-values:
//!   `br` or `gzip`, brotli on a tie; identity when neither is acceptable.
//! - Only text bodies (JSON, the YAML API document) of at least
//!   [`MIN_BYTES`] are compressed: below that the headers cost more than
//!   compression saves.
//! - Every answer says `Vary: Accept-Encoding`, so caches keep the codings
//!   apart.
//! - ETags: a compressed answer is another representation, so its strong
//!   ETag gets the coding as a suffix (`"<hash>-gzip"`, `"<hash>-br"`, as
//!   Apache's mod_deflate does). `If-None-Match` compares tags without the
//!   suffix ([`same_entity`]): a client holding any coding's tag gets its
//!   304.

use std::io::Write;

use http::HeaderValue;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, ETAG, VARY};
use lambda_http::{Body, Response};

/// Bodies smaller than this go out as they are.
pub const MIN_BYTES: usize = 1024;

/// A content coding the server produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
        }
    }
}

/// The coding to answer with, from an `Accept-Encoding` header.
pub fn negotiate(accept_encoding: Option<&str>) -> Coding {
    let Some(header) = accept_encoding else { return Coding::Identity };
    let quality_of = |wanted: &str| -> Option<f32> {
        let mut wildcard = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|param| param.trim().strip_prefix("q=").or_else(|| param.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if name.eq_ignore_ascii_case(wanted) {
                return Some(q);
            }
            if name == "*" {
                wildcard = Some(q);
            }
        }
        wildcard
    };
    let brotli = quality_of("br").unwrap_or(0.0);
    let gzip = quality_of("gzip").unwrap_or(0.0);
    match (brotli, gzip) {
        (b, g) if b > 0.0 && b >= g => Coding::Brotli,
        (_, g) if g > 0.0 => Coding::Gzip,
        _ => Coding::Identity,
    }
}

/// Compresses `response`'s body with `coding` when it is text (JSON, YAML),
/// large enough and not encoded already; always adds `Vary:
/// Accept-Encoding`.
pub fn compress(response: &mut Response<Body>, coding: Coding) {
    response.headers_mut().append(VARY, HeaderValue::from_static("Accept-Encoding"));
    let compressible = response.headers().get(CONTENT_TYPE).is_some_and(|value| {
        let media = value.as_bytes();
        media.starts_with(b"application/json") || media.starts_with(b"application/yaml") || media.starts_with(b"text/")
    });
    if coding == Coding::Identity || !compressible || response.headers().contains_key(CONTENT_ENCODING) {
        return;
    }
    let plain: &[u8] = match response.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return,
    };
    if plain.len() < MIN_BYTES {
        return;
    }
    let Some(encoded) = encode(plain, coding) else { return };
    *response.body_mut() = Body::Binary(encoded);
    let headers = response.headers_mut();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    if let Some(tag) = headers.get(ETAG).and_then(|value| value.to_str().ok())
        && let Ok(tagged) = HeaderValue::from_str(&coded_etag(tag, coding))
    {
        headers.insert(ETAG, tagged);
    }
}

/// `plain` in `coding`; `None` for identity (or a failed encoder).
pub fn encode(plain: &[u8], coding: Coding) -> Option<Vec<u8>> {
    match coding {
        Coding::Identity => None,
        Coding::Gzip => {
            // Level 1: within a tenth of level 6's size on JSON, at about
            // twice its speed (load/compression-bench.sh).
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 4), flate2::Compression::new(1));
            encoder.write_all(plain).ok()?;
            encoder.finish().ok()
        }
        Coding::Brotli => {
            // Quality 3: smaller than gzip at level 6 on a page of the
            // catalog, at a fraction of the CPU of brotli's higher levels,
            // which suit static files, not answers (load/compression-bench.sh).
            let params = brotli::enc::BrotliEncoderParams { quality: 3, lgwin: 20, ..Default::default() };
            let mut encoded = Vec::with_capacity(plain.len() / 4);
            brotli::BrotliCompress(&mut &plain[..], &mut encoded, &params).ok()?;
            Some(encoded)
        }
    }
}

/// `"<hash>"` -> `"<hash>-gzip"` (weak tags keep their `W/`).
fn coded_etag(tag: &str, coding: Coding) -> String {
    match tag.strip_suffix('"') {
        Some(open) => format!("{open}-{}\"", coding.token()),
        None => tag.to_owned(),
    }
}

/// Whether two entity tags name the same entity in any coding (and weakly:
/// `W/` is ignored, as `If-None-Match` requires).
pub fn same_entity(a: &str, b: &str) -> bool {
    fn base(tag: &str) -> &str {
        let tag = tag.trim().trim_start_matches("W/");
        let inner = tag.trim_matches('"');
        inner.strip_suffix("-gzip").or_else(|| inner.strip_suffix("-br")).unwrap_or(inner)
    }
    base(a) == base(b)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn json_response(body: String) -> Response<Body> {
        let mut response = Response::new(Body::Text(body));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.headers_mut().insert(ETAG, HeaderValue::from_static("\"0123456789abcdef\""));
        response
    }

    fn big_body() -> String {
        format!("{{\"items\":[{}]}}", vec!["{\"name\":\"Sturdy Widget\",\"price\":9.99}"; 100].join(","))
    }

    #[test]
    fn q_values_pick_the_coding_and_brotli_wins_a_tie() {
        assert_eq!(negotiate(None), Coding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br")), Coding::Brotli);
        assert_eq!(negotiate(Some("gzip")), Coding::Gzip);
        assert_eq!(negotiate(Some("br;q=0.5, gzip;q=0.8")), Coding::Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0")), Coding::Identity);
        assert_eq!(negotiate(Some("identity")), Coding::Identity);
        assert_eq!(negotiate(Some("*")), Coding::Brotli);
        assert_eq!(negotiate(Some("*;q=0.1, br;q=0")), Coding::Gzip);
        assert_eq!(negotiate(Some("deflate")), Coding::Identity);
    }

    #[test]
    fn a_large_json_body_is_gzipped_with_its_etag_marked_and_decodes_back() {
        let body = big_body();
        let mut response = json_response(body.clone());
        compress(&mut response, Coding::Gzip);
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[VARY], "Accept-Encoding");
        assert_eq!(response.headers()[ETAG], "\"0123456789abcdef-gzip\"");
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(response.body().as_ref()).read_to_string(&mut decoded).unwrap();
        assert_eq!(decoded, body);
        assert!(response.body().len() < body.len() / 4);
    }

    #[test]
    fn a_large_json_body_is_brotli_encoded_and_decodes_back() {
        let body = big_body();
        let mut response = json_response(body.clone());
        compress(&mut response, Coding::Brotli);
        assert_eq!(response.headers()[CONTENT_ENCODING], "br");
        let mut decoded = Vec::new();
        brotli::BrotliDecompress(&mut response.body().as_ref(), &mut decoded).unwrap();
        assert_eq!(decoded, body.as_bytes());
    }

    #[test]
    fn small_bodies_and_identity_go_out_as_they_are_but_still_vary() {
        let mut small = json_response("{\"ok\":true}".into());
        compress(&mut small, Coding::Gzip);
        assert!(!small.headers().contains_key(CONTENT_ENCODING));
        assert_eq!(small.headers()[VARY], "Accept-Encoding");
        let mut plain = json_response(big_body());
        compress(&mut plain, Coding::Identity);
        assert!(!plain.headers().contains_key(CONTENT_ENCODING));
        assert_eq!(plain.headers()[ETAG], "\"0123456789abcdef\"");
    }

    #[test]
    fn tags_of_one_entity_match_whatever_the_coding() {
        assert!(same_entity("\"abc\"", "\"abc-gzip\""));
        assert!(same_entity("W/\"abc-br\"", "\"abc\""));
        assert!(!same_entity("\"abc\"", "\"abd-gzip\""));
    }
}

//! Writing responses: JSON bodies, and the headers every response carries.

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::error::ApiError;

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    json_bytes(status, body)
}

/// A response whose body is JSON serialised already: a cached page, a
/// stored idempotent response.
pub fn json_bytes(status: StatusCode, body: impl Into<Body>) -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Adds `Location: path`, where a 201 says the new resource lives.
pub fn with_location(mut response: Response<Body>, path: &str) -> Response<Body> {
    if let Ok(location) = HeaderValue::from_str(path) {
        response.headers_mut().insert(http::header::LOCATION, location);
    }
    response
}

/// 204 No Content.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Headers a browser reads for CORS, beyond the simple ones.
const EXPOSED_HEADERS: &str = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, \
     Retry-After, ETag, Idempotent-Replayed";
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match";
const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";

/// Security headers and CORS, on every response including errors. An API
/// that only ever returns JSON can forbid everything a browser might do
/// with it.
pub fn apply_standard_headers(response: &mut Response<Body>, request_id: &str, cors_allow_origin: &str) {
    let headers = response.headers_mut();
    let fixed = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("strict-transport-security", "max-age=63072000; includeSubDomains"),
        ("cross-origin-resource-policy", "same-origin"),
        ("access-control-expose-headers", EXPOSED_HEADERS),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Only the API reference page brings its own, relaxed as it needs.
    if !headers.contains_key("content-security-policy") {
        headers
            .insert("content-security-policy", HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    }
    if !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    if let Ok(origin) = HeaderValue::from_str(cors_allow_origin) {
        headers.insert("access-control-allow-origin", origin);
        if cors_allow_origin != "*" {
            headers.append("vary", HeaderValue::from_static("Origin"));
        }
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
}

/// The answer to a CORS preflight (`OPTIONS`). In AWS the HTTP API answers
/// preflights itself from the template's CORS configuration; the local
/// gateway uses this.
pub fn preflight() -> Response<Body> {
    let mut response = no_content();
    let headers = response.headers_mut();
    headers.insert("access-control-allow-methods", HeaderValue::from_static(ALLOWED_METHODS));
    headers.insert("access-control-allow-headers", HeaderValue::from_static(ALLOWED_HEADERS));
    headers.insert("access-control-max-age", HeaderValue::from_static("600"));
    response
}

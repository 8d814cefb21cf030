//! The one error type of the HTTP layer and its mapping to status codes.
//!
//! Handlers return `Result<Response, ApiError>`; [`ApiError::to_response`]
//! is the only place an error becomes a response. Variants that stand for an
//! infrastructure failure keep their cause for the log and send the client a
//! generic message.

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::FieldErrors;
use crate::store::StoreError;

/// Everything that can make a request fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, an unknown field, a bad query parameter; `details`
    /// maps each failing field to what is wrong with it.
    #[error("{message}")]
    BadRequest { message: String, details: Option<Map<String, Value>> },
    /// 401: token missing, malformed, badly signed, expired or revoked; wrong
    /// credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not; carries the allowed methods.
    #[error("method not allowed")]
    MethodNotAllowed { allowed: Vec<&'static str> },
    /// 409: a taken unique value, not enough stock, a forbidden transition.
    #[error("{0}")]
    Conflict(String),
    /// 409 naming what conflicted (the products short of stock).
    #[error("{message}")]
    ConflictWith { message: String, details: Map<String, Value> },
    /// 412: an `If-Match` precondition failed (the resource changed since
    /// the client read it).
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the body is over the configured cap.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: the body is not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` reused with a different request.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: the client IP is over its rate limit for this window.
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    /// 429: what the request writes is too busy right now (one product's
    /// stock under a rush); the store is fine, the request worth a retry.
    #[error("too busy right now: try again shortly")]
    Busy { retry_after: Duration },
    /// 503: a dependency the request needs is down, or the request ran out
    /// of time. The cause is logged only; `Retry-After` says when to retry.
    #[error("service temporarily unavailable")]
    Unavailable { cause: String, retry_after: Duration },
    /// 500: a bug or an unexpected failure. The cause is logged only.
    #[error("internal server error")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a plain message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), details: None }
    }

    /// A 400 naming each invalid field.
    pub fn invalid_fields(details: Map<String, Value>) -> Self {
        ApiError::BadRequest { message: "validation failed".into(), details: Some(details) }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::ConflictWith { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } | ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON error response: `{error, status, timestamp[, details]}`.
    /// Infrastructure causes are logged here, never sent.
    pub fn to_response(&self) -> Response<Body> {
        match self {
            ApiError::Unavailable { cause, .. } => tracing::warn!(cause = %cause, "dependency unavailable"),
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "internal error"),
            _ => {}
        }
        let status = self.status();
        let mut body = json!({
            "error": self.to_string(),
            "status": status.as_u16(),
            "timestamp": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        });
        match self {
            ApiError::BadRequest { details: Some(details), .. } | ApiError::ConflictWith { details, .. } => {
                body["details"] = Value::Object(details.clone());
            }
            _ => {}
        }
        let mut builder = Response::builder().status(status).header("content-type", "application/json");
        match self {
            ApiError::TooManyRequests { retry_after }
            | ApiError::Busy { retry_after }
            | ApiError::Unavailable { retry_after, .. } => {
                builder = builder.header("retry-after", whole_seconds(*retry_after).to_string());
            }
            ApiError::MethodNotAllowed { allowed } => {
                builder = builder.header("allow", allowed.join(", "));
            }
            _ => {}
        }
        builder.body(Body::Text(body.to_string())).expect("a response built from valid static parts")
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1: a client told
/// 0 would retry at once.
fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}

impl ApiError {
    /// A 503 for a dependency that failed now: worth a retry in a second.
    /// The 429 of a request that found what it writes too busy (a rush on
    /// one product): retry after a second.
    pub fn busy() -> Self {
        ApiError::Busy { retry_after: CONTENDED_RETRY_AFTER }
    }

    /// A request that got no turn at its product's stock in time (see
    /// [`crate::resilience::key_queue`]).
    pub fn no_turn(why: crate::resilience::key_queue::NoTurn) -> Self {
        match why {
            crate::resilience::key_queue::NoTurn::Busy => ApiError::busy(),
            crate::resilience::key_queue::NoTurn::StoreSlow => {
                ApiError::unavailable("the store did not answer the order ahead in this product's queue")
            }
        }
    }

    pub fn unavailable(cause: impl Into<String>) -> Self {
        ApiError::Unavailable { cause: cause.into(), retry_after: Duration::from_secs(1) }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::invalid_fields(errors.into_map())
    }
}

/// How soon a request refused on a busy key may retry.
const CONTENDED_RETRY_AFTER: Duration = Duration::from_secs(1);

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            StoreError::Contended(_) => ApiError::busy(),
            StoreError::BreakerOpen(retry_after) => {
                ApiError::Unavailable { cause: "store circuit breaker open".into(), retry_after }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(response: &Response<Body>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn an_error_body_has_message_status_and_timestamp() {
        let response = ApiError::Conflict("email already registered".into()).to_response();
        assert_eq!(response.status(), 409);
        let body = body_of(&response);
        assert_eq!(body["error"], "email already registered");
        assert_eq!(body["status"], 409);
        assert!(OffsetDateTime::parse(body["timestamp"].as_str().unwrap(), &Rfc3339).is_ok());
        assert!(body.get("details").is_none());
    }

    #[test]
    fn field_errors_carry_details() {
        let mut details = Map::new();
        details.insert("email".into(), "not a valid email address".into());
        let body = body_of(&ApiError::invalid_fields(details).to_response());
        assert_eq!(body["status"], 400);
        assert_eq!(body["details"]["email"], "not a valid email address");
    }

    #[test]
    fn internal_causes_never_reach_the_client() {
        let response = ApiError::Internal("redb: table users is corrupt at page 7".into()).to_response();
        assert_eq!(response.status(), 500);
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(!text.contains("redb"), "{text}");
        let response = ApiError::unavailable("connect to 10.0.0.1:6379 refused").to_response();
        assert_eq!(response.status(), 503);
        assert!(!String::from_utf8(response.body().to_vec()).unwrap().contains("10.0.0.1"));
    }

    #[test]
    fn a_rate_limited_response_says_when_to_retry() {
        let response = ApiError::TooManyRequests { retry_after: Duration::from_secs(42) }.to_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "42");
    }

    #[test]
    fn an_unavailable_response_says_when_to_retry_rounded_up() {
        let open = StoreError::BreakerOpen(Duration::from_millis(2_300));
        let response = ApiError::from(open).to_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "3");
        assert_eq!(body_of(&response)["status"], 503);
        let response = ApiError::unavailable("timed out").to_response();
        assert_eq!(response.headers()["retry-after"], "1");
    }
}

//! `Idempotency-Key` on the routes that create orders (`POST /api/orders`,
//! `POST /api/checkout`): claim the key before any work, replay a completed
//! request's answer, and give the key up when the request failed.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;

use crate::access::Principal;
use crate::app::App;
use crate::error::ApiError;
use crate::store::{IdempotencyClaim, IdempotencyTicket};

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// What the key said about this request.
pub(super) enum Claimed {
    /// Do the work; with a ticket, complete it in the same atomic write.
    Proceed(Option<IdempotencyTicket>),
    /// An earlier request with the key completed: its answer, replayed.
    Replayed(Response<Body>),
}

/// Claims the request's `Idempotency-Key`, if it has one, for a request
/// identified by `fingerprint`.
pub(super) async fn claim(
    app: &App,
    principal: &Principal,
    request: &Request,
    fingerprint: impl FnOnce() -> String,
) -> Result<Claimed, ApiError> {
    let Some(key) = idempotency_key(request)? else { return Ok(Claimed::Proceed(None)) };
    let fingerprint = fingerprint();
    let claim = app.store.claim_idempotency_key(principal.user_id, &key, &fingerprint, OffsetDateTime::now_utc());
    match claim.await? {
        IdempotencyClaim::Acquired(ticket) => Ok(Claimed::Proceed(Some(ticket))),
        IdempotencyClaim::Replay { status, body } => replay(status, body).map(Claimed::Replayed),
        IdempotencyClaim::Mismatch => {
            Err(ApiError::Unprocessable("Idempotency-Key was already used with a different request".into()))
        }
        IdempotencyClaim::InProgress => {
            Err(ApiError::Conflict("a request with this Idempotency-Key is still in progress".into()))
        }
    }
}

/// After the work: when it failed, nothing was written, so the key is let
/// go and a retry with it runs anew.
pub(super) async fn settle<T>(app: &App, ticket: Option<&IdempotencyTicket>, result: &Result<T, ApiError>) {
    if let (Err(_), Some(ticket)) = (result, ticket)
        && let Err(err) = app.store.release_idempotency_key(ticket).await
    {
        tracing::warn!(error = %err, "could not release an idempotency key");
    }
}

fn replay(status: u16, body: String) -> Result<Response<Body>, ApiError> {
    let status = StatusCode::from_u16(status).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = crate::http::json_bytes(status, body)?;
    response.headers_mut().insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    Ok(response)
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let key = value.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    Ok(Some(key.to_owned()))
}

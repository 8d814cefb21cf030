//! The admin event log: every domain event of the last 30 days, newest
//! first, as the change feed's `events-record` consumer stored it.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::query::{known_params, page_limit};
use crate::app::App;
use crate::domain::FieldErrors;
use crate::error::ApiError;
use crate::events::EventType;
use crate::http::json;
use crate::store::EventQuery;

/// `GET /api/events`: `type` (one event type), `limit`, `cursor`.
pub async fn list(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let mut errors = FieldErrors::new();
    let params = known_params(&request, &["type", "limit", "cursor"], &mut errors);
    let event_type = params.first("type").and_then(|raw| {
        let known = || EventType::ALL.map(EventType::as_str).join(", ");
        errors.check("type", EventType::parse(raw).ok_or_else(|| format!("must be one of {}", known())))
    });
    let limit = page_limit(params.first("limit"), &mut errors);
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let scope = format!("events|{}", event_type.map_or("", EventType::as_str));
    let after: Option<String> = params.first("cursor").map(|cursor| app.cursors.decode(&scope, cursor)).transpose()?;
    let page = app.store.list_events(&EventQuery { event_type, limit, after }).await?;
    let next = page.next.map(|position| app.cursors.encode(&scope, &position));
    json(StatusCode::OK, &json!({ "items": page.items, "nextCursor": next }))
}

//! Webhook subscriptions (admin only): create, list, read, delete, rotate
//! the secret, and each subscription's delivery log. The secret is shown
//! in the answers that make one (create, rotate) and nowhere else.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::query::{known_params, page_limit};
use crate::app::App;
use crate::domain::FieldErrors;
use crate::error::ApiError;
use crate::http::{json, no_content, parse_json, path_param, with_location};
use crate::store::StoreError;
use crate::webhooks::subscription::parse_description;
use crate::webhooks::{EventFilter, MAX_WEBHOOKS, SECRET_OVERLAP, Webhook, WebhookSecret};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// A subscription as the API shows it: never its secrets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookView<'a> {
    id: Uuid,
    url: &'a str,
    events: &'a EventFilter,
    description: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Until when the secret a rotation replaced still signs, if it does.
    #[serde(with = "time::serde::rfc3339::option")]
    previous_secret_expires_at: Option<OffsetDateTime>,
}

impl<'a> WebhookView<'a> {
    fn of(webhook: &'a Webhook, now: OffsetDateTime) -> Self {
        WebhookView {
            id: webhook.id,
            url: &webhook.url,
            events: &webhook.events,
            description: &webhook.description,
            created_at: webhook.created_at,
            previous_secret_expires_at: webhook.previous_secret.as_ref().map(|p| p.until).filter(|until| *until > now),
        }
    }
}

/// The view with the secret: only in the answer that made it.
fn with_secret(webhook: &Webhook, now: OffsetDateTime) -> Result<Value, ApiError> {
    let mut view =
        serde_json::to_value(WebhookView::of(webhook, now)).map_err(|e| ApiError::Internal(e.to_string()))?;
    view["secret"] = Value::from(webhook.secret.as_str());
    Ok(view)
}

fn not_found() -> ApiError {
    ApiError::NotFound("webhook not found".into())
}

/// A malformed id names no subscription: 404, like an unknown one.
fn webhook_id(request: &Request) -> Result<Uuid, ApiError> {
    path_param(request, "id").and_then(|raw| Uuid::parse_str(raw).ok()).ok_or_else(not_found)
}

/// `limit` and `cursor`, the only parameters of the webhook listings.
fn page_params(request: &Request) -> Result<(usize, Option<String>), ApiError> {
    let mut errors = FieldErrors::new();
    let params = known_params(request, &["limit", "cursor"], &mut errors);
    let limit = page_limit(params.first("limit"), &mut errors);
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok((limit, params.first("cursor").map(str::to_owned)))
}

/// `POST /api/webhooks`: `{url, events, description?}`.
pub async fn create(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let body: NewWebhook = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let url = errors.check("url", app.config.webhook_target_policy().check_resolved(body.url.trim()).await);
    let events = errors.check("events", EventFilter::parse(&body.events));
    let description = errors.check("description", parse_description(body.description.as_deref()));
    let (Some(url), Some(events), Some(description)) = (url, events, description) else { return Err(errors.into()) };
    let now = OffsetDateTime::now_utc();
    let webhook = Webhook {
        id: Uuid::now_v7(),
        url: url.to_string(),
        events,
        description,
        created_at: now,
        secret: WebhookSecret::generate(),
        previous_secret: None,
    };
    app.store.create_webhook(&webhook, MAX_WEBHOOKS).await.map_err(|err| match err {
        StoreError::LimitReached(limit) => {
            let mut errors = FieldErrors::new();
            errors.add("url", format!("at most {limit} subscriptions may exist; delete one first"));
            ApiError::from(errors)
        }
        other => ApiError::from(other),
    })?;
    tracing::info!(webhook_id = %webhook.id, url = %webhook.url, event = "webhook_created", "webhook created");
    let response = json(StatusCode::CREATED, &with_secret(&webhook, now)?)?;
    Ok(with_location(response, &format!("/api/webhooks/{}", webhook.id)))
}

/// `GET /api/webhooks`: `limit`, `cursor`; newest first.
pub async fn list(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let (limit, cursor) = page_params(&request)?;
    let after: Option<Uuid> = cursor.map(|cursor| app.cursors.decode("webhooks", &cursor)).transpose()?;
    let webhooks = app.store.webhooks().await?;
    let mut page: Vec<&Webhook> =
        webhooks.iter().filter(|w| after.is_none_or(|after| w.id < after)).take(limit + 1).collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|w| app.cursors.encode("webhooks", &w.id))
    } else {
        None
    };
    let now = OffsetDateTime::now_utc();
    let items: Vec<WebhookView> = page.into_iter().map(|w| WebhookView::of(w, now)).collect();
    json(StatusCode::OK, &json!({ "items": items, "nextCursor": next }))
}

/// `GET /api/webhooks/{id}`.
pub async fn get(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let webhook = app.store.webhook(webhook_id(&request)?).await?.ok_or_else(not_found)?;
    json(StatusCode::OK, &WebhookView::of(&webhook, OffsetDateTime::now_utc()))
}

/// `DELETE /api/webhooks/{id}`: deliveries stop, pending retries included.
pub async fn delete(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let id = webhook_id(&request)?;
    app.store.delete_webhook(id).await.map_err(|err| match err {
        StoreError::NotFound => not_found(),
        other => other.into(),
    })?;
    tracing::info!(webhook_id = %id, event = "webhook_deleted", "webhook deleted");
    Ok(no_content())
}

/// `POST /api/webhooks/{id}/rotate-secret`: a new secret; the old one
/// keeps signing beside it for [`SECRET_OVERLAP`].
pub async fn rotate_secret(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let id = webhook_id(&request)?;
    let now = OffsetDateTime::now_utc();
    let webhook =
        app.store.rotate_webhook_secret(id, &WebhookSecret::generate(), now + SECRET_OVERLAP).await.map_err(|err| {
            match err {
                StoreError::NotFound => not_found(),
                other => other.into(),
            }
        })?;
    tracing::info!(webhook_id = %id, event = "webhook_secret_rotated", "webhook secret rotated");
    json(StatusCode::OK, &with_secret(&webhook, now)?)
}

/// `GET /api/webhooks/{id}/deliveries`: `limit`, `cursor`; newest first.
pub async fn deliveries(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let id = webhook_id(&request)?;
    let (limit, cursor) = page_params(&request)?;
    let scope = format!("deliveries|{id}");
    let after: Option<Uuid> = cursor.map(|cursor| app.cursors.decode(&scope, &cursor)).transpose()?;
    if app.store.webhook(id).await?.is_none() {
        return Err(not_found());
    }
    let page = app.store.deliveries(id, limit, after).await?;
    let next = page.next.map(|last| app.cursors.encode(&scope, &last));
    json(StatusCode::OK, &json!({ "items": page.items, "nextCursor": next }))
}

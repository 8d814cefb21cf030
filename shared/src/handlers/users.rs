//! User management for admins: list and read users, change a role, disable
//! or re-enable an account. Every change is logged with the admin who made
//! it; the last active admin can be neither demoted nor disabled (409),
//! decided by the store atomically with the change.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::query::{known_params, page_limit};
use super::views::UserView;
use crate::access::Principal;
use crate::app::App;
use crate::domain::{FieldErrors, Role, User, UserId, UserStatus};
use crate::error::ApiError;
use crate::http::{json, parse_json, path_param};
use crate::store::{StoreError, UserQuery};

/// The longest `q` prefix: an email's length.
const MAX_PREFIX: usize = 254;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: String,
}

/// `GET /api/users`: newest first; `q` (a prefix of the email or the name,
/// any case), `role`, `limit`, `cursor`.
pub async fn list(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let mut errors = FieldErrors::new();
    let params = known_params(&request, &["q", "role", "limit", "cursor"], &mut errors);
    let prefix = params.first("q").map(|raw| raw.trim().to_lowercase()).filter(|q| !q.is_empty());
    if prefix.as_ref().is_some_and(|q| q.chars().count() > MAX_PREFIX || q.chars().any(char::is_control)) {
        errors.add("q", format!("must be at most {MAX_PREFIX} characters, none of them control characters"));
    }
    let role = params.first("role").and_then(|raw| errors.check("role", Role::parse(raw).ok_or(role_values())));
    let limit = page_limit(params.first("limit"), &mut errors);
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let scope = format!("users|{}|{}", prefix.as_deref().unwrap_or(""), role.map_or("", Role::as_str));
    let after: Option<UserId> = params.first("cursor").map(|cursor| app.cursors.decode(&scope, cursor)).transpose()?;
    let page = app.store.list_users(&UserQuery { prefix, role, limit, after }).await?;
    let items: Vec<UserView> = page.items.iter().map(UserView::from).collect();
    let next = page.next.map(|id| app.cursors.encode(&scope, &id));
    json(StatusCode::OK, &json!({ "items": items, "nextCursor": next }))
}

/// `GET /api/users/{id}`.
pub async fn get(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let user = user_of_path(app, &request).await?;
    json(StatusCode::OK, &UserView::from(&user))
}

/// `PUT /api/users/{id}/role` `{role}` -> 200 user. Takes effect on the
/// user's next request: tokens are checked against the stored role.
pub async fn update_role(app: &App, admin: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let user = user_of_path(app, &request).await?;
    let body: RoleChange = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let Some(role) = errors.check("role", Role::parse(&body.role).ok_or(role_values())) else {
        return Err(errors.into());
    };
    let updated = change_access(app, &admin, &user, role, user.status).await?;
    json(StatusCode::OK, &UserView::from(&updated))
}

/// `PUT /api/users/{id}/status` `{status}` -> 200 user. Disabling signs
/// the user out everywhere at once and refuses their logins; their orders
/// stay.
pub async fn update_status(app: &App, admin: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let user = user_of_path(app, &request).await?;
    let body: StatusChange = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let status = UserStatus::parse(&body.status).ok_or_else(|| "must be active or disabled".to_owned());
    let Some(status) = errors.check("status", status) else { return Err(errors.into()) };
    let updated = change_access(app, &admin, &user, user.role, status).await?;
    json(StatusCode::OK, &UserView::from(&updated))
}

async fn change_access(
    app: &App,
    admin: &Principal,
    user: &User,
    role: Role,
    status: UserStatus,
) -> Result<User, ApiError> {
    if (role, status) == (user.role, user.status) {
        return Ok(user.clone());
    }
    let updated =
        app.store.change_user_access(user, role, status, OffsetDateTime::now_utc()).await.map_err(|err| match err {
            StoreError::LastAdmin => ApiError::Conflict("the last active admin cannot be demoted or disabled".into()),
            StoreError::UserChanged => {
                ApiError::Conflict("the user's role or status changed meanwhile; reload it".into())
            }
            StoreError::NotFound => not_found(),
            other => other.into(),
        })?;
    tracing::info!(
        user_id = %user.id,
        by = %admin.user_id,
        role_from = user.role.as_str(),
        role_to = role.as_str(),
        status_from = user.status.as_str(),
        status_to = status.as_str(),
        event = "user_access_changed",
        "user access changed"
    );
    Ok(updated)
}

async fn user_of_path(app: &App, request: &Request) -> Result<User, ApiError> {
    let id = path_param(request, "id").and_then(UserId::parse).ok_or_else(not_found)?;
    app.store.user_by_id(id).await?.ok_or_else(not_found)
}

fn role_values() -> String {
    "must be customer or admin".into()
}

fn not_found() -> ApiError {
    ApiError::NotFound("user not found".into())
}

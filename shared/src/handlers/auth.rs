//! The auth routes: register, login, profile, logout.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::views::UserView;
use crate::access::Principal;
use crate::app::{App, unix_now};
use crate::auth::IssuedToken;
use crate::domain::{Email, FieldErrors, Password, Role, User, UserId, UserName, UserStatus};
use crate::error::ApiError;
use crate::http::{json, no_content, parse_json};
use crate::metrics::{self, Metric};
use crate::store::StoreError;

/// One message for an unknown email and a wrong password, so that login
/// does not tell which emails are registered.
const BAD_CREDENTIALS: &str = "invalid email or password";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

/// Every field optional; `role` is not a field, so sending it is a 400.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfileUpdateRequest {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
}

#[derive(Serialize)]
struct AuthResponse {
    token: String,
    user: UserView,
}

#[derive(Serialize)]
struct ProfileResponse {
    user: UserView,
    /// After a password change only: the caller's new token, since every
    /// token issued before the change, the caller's own included, is now
    /// refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// `POST /api/auth/register` -> 201 `{token, user}`.
pub async fn register(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let body: RegisterRequest = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&body.email));
    let name = errors.check("name", UserName::parse(&body.name));
    let password = errors.check("password", Password::parse(&body.password));
    let (Some(email), Some(name), Some(password)) = (email, name, password) else {
        return Err(errors.into());
    };
    let role =
        if app.config.admin_emails.iter().any(|admin| admin == email.as_str()) { Role::Admin } else { Role::Customer };
    let password_hash = app.passwords.hash(&password).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = OffsetDateTime::now_utc();
    let user = User {
        id: UserId::new(),
        email,
        name,
        role,
        password_hash,
        status: UserStatus::Active,
        session_version: 0,
        created_at: now,
        updated_at: now,
    };
    app.store.create_user(&user).await.map_err(email_conflict)?;
    tracing::info!(user_id = %user.id, role = role.as_str(), event = "user_registered", "user registered");
    metrics::count(Metric::UsersRegistered);
    respond_with_token(app, StatusCode::CREATED, &user)
}

/// `POST /api/auth/login` -> 200 `{token, user}`.
pub async fn login(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let body: LoginRequest = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&body.email));
    if body.password.is_empty() {
        errors.add("password", "is required");
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else { return Err(errors.into()) };
    if let Some(retry_after) = app.login_throttle.blocked(email.as_str(), unix_now()).await {
        metrics::count(Metric::RateLimited);
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let Some(user) = app.store.user_by_email(&email).await? else {
        app.passwords.verify_decoy(&body.password).await;
        return Err(refuse_login(app, &email).await);
    };
    // A disabled account is refused like a wrong password, after the same
    // hashing work: the answer does not tell it apart.
    let verified = app.passwords.verify(&body.password, &user.password_hash).await;
    if !verified || user.status == UserStatus::Disabled {
        return Err(refuse_login(app, &email).await);
    }
    tracing::info!(user_id = %user.id, event = "user_logged_in", "user logged in");
    respond_with_token(app, StatusCode::OK, &user)
}

/// Counts a failed login against the email (known or not) and returns the
/// one answer every failure gets.
async fn refuse_login(app: &App, email: &Email) -> ApiError {
    metrics::count(Metric::LoginsFailed);
    app.login_throttle.record_failure(email.as_str(), unix_now()).await;
    ApiError::Unauthorized(BAD_CREDENTIALS.into())
}

/// `GET /api/auth/profile` -> 200 `{user}`.
pub async fn profile(app: &App, principal: Principal) -> Result<Response<Body>, ApiError> {
    let user = current_user(app, &principal).await?;
    json(StatusCode::OK, &ProfileResponse { user: UserView::from(&user), token: None })
}

/// `PUT /api/auth/profile` -> 200 `{user}`. A new password needs the
/// current one, signs out every session and comes back with a new token:
/// 200 `{user, token}`.
pub async fn update_profile(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let previous = current_user(app, &principal).await?;
    let mut user = previous.clone();
    let body: ProfileUpdateRequest = parse_json(&request, app.config.max_body_bytes)?;
    if body.name.is_none() && body.email.is_none() && body.password.is_none() {
        return Err(ApiError::bad_request("nothing to update: send name, email or password"));
    }
    let mut errors = FieldErrors::new();
    let name = body.name.and_then(|raw| errors.check("name", UserName::parse(&raw)));
    let email = body.email.and_then(|raw| errors.check("email", Email::parse(&raw)));
    let password = body.password.and_then(|raw| errors.check("password", Password::parse(&raw)));
    if password.is_some() && body.current_password.is_none() {
        errors.add("currentPassword", "is required to change the password");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    if let Some(password) = password {
        let current = body.current_password.unwrap_or_default();
        if !app.passwords.verify(&current, &user.password_hash).await {
            return Err(ApiError::Unauthorized("current password is incorrect".into()));
        }
        user.password_hash = app.passwords.hash(&password).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        user.session_version = user.session_version.wrapping_add(1);
    }
    let password_changed = user.session_version != previous.session_version;
    if let Some(name) = name {
        user.name = name;
    }
    if let Some(email) = email {
        user.email = email;
    }
    user.updated_at = OffsetDateTime::now_utc();
    app.store.update_user(&user, &previous).await.map_err(|err| match err {
        StoreError::NotFound => ApiError::Unauthorized("user no longer exists".into()),
        StoreError::UserChanged => {
            ApiError::Conflict("the profile's email or password changed meanwhile; reload it and try again".into())
        }
        other => email_conflict(other),
    })?;
    let token = if password_changed {
        tracing::info!(user_id = %user.id, event = "password_changed", "password changed; older sessions signed out");
        Some(issue_token(app, &user)?.token)
    } else {
        None
    };
    json(StatusCode::OK, &ProfileResponse { user: UserView::from(&user), token })
}

/// `POST /api/auth/logout` -> 204; the token is refused from now on.
pub async fn logout(app: &App, principal: Principal) -> Result<Response<Body>, ApiError> {
    app.store.revoke_token(&principal.claims.jti, principal.claims.expires_at()).await?;
    Ok(no_content())
}

async fn current_user(app: &App, principal: &Principal) -> Result<User, ApiError> {
    app.store.user_by_id(principal.user_id).await?.ok_or_else(|| ApiError::Unauthorized("user no longer exists".into()))
}

fn respond_with_token(app: &App, status: StatusCode, user: &User) -> Result<Response<Body>, ApiError> {
    let issued = issue_token(app, user)?;
    json(status, &AuthResponse { token: issued.token, user: UserView::from(user) })
}

fn issue_token(app: &App, user: &User) -> Result<IssuedToken, ApiError> {
    app.tokens.issue(user).map_err(|e| ApiError::Internal(e.to_string()))
}

fn email_conflict(err: StoreError) -> ApiError {
    match err {
        StoreError::EmailTaken => ApiError::Conflict("email already registered".into()),
        other => other.into(),
    }
}

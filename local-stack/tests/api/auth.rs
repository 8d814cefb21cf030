//! The auth routes, every status they can produce.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, expect_error, expect_status};

#[tokio::test]
async fn registering_returns_a_token_and_the_user_without_its_hash() {
    let app = TestApp::spawn().await;
    let response = app.register("  Ada.Lovelace@Example.COM ", PASSWORD, " Ada Lovelace ").await;
    let body = expect_status(response, StatusCode::CREATED).await;
    let user = &body["user"];
    assert_eq!(user["email"], "ada.lovelace@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["role"], "customer");
    for field in ["id", "createdAt", "updatedAt"] {
        assert!(user[field].is_string(), "{field} missing: {user}");
    }
    assert!(user.get("passwordHash").is_none() && user.get("password").is_none(), "{user}");
    let profile = expect_status(app.profile(body["token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(profile["user"], *user);
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    expect_status(app.register("grace@example.com", PASSWORD, "Grace").await, StatusCode::CREATED).await;
    let body = expect_error(app.register("GRACE@example.COM", PASSWORD, "Impostor").await, StatusCode::CONFLICT).await;
    assert_eq!(body["error"], "email already registered");
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_one_user() {
    let app = TestApp::spawn().await;
    let attempts = (0..6).map(|_| app.register("once@example.com", PASSWORD, "Once"));
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
}

#[tokio::test]
async fn every_invalid_field_is_named_in_one_response() {
    let app = TestApp::spawn().await;
    let body = expect_error(app.register("not-an-email", "short", "").await, StatusCode::BAD_REQUEST).await;
    for field in ["email", "password", "name"] {
        assert!(body["details"][field].is_string(), "{field} not named: {body}");
    }
}

#[tokio::test]
async fn a_role_cannot_be_chosen_at_registration() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "sneaky@example.com", "password": PASSWORD, "name": "Sneaky", "role": "admin"});
    let response = app.request(Method::POST, "/api/auth/register").json(&body).send().await.unwrap();
    let error = expect_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error["details"]["role"], "unknown field");
    expect_error(app.login("sneaky@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn malformed_bodies_get_400_415_and_413() {
    let app = TestApp::spawn_with(&[("MAX_BODY_BYTES", "1024")]).await;
    let post = |content_type: Option<&str>, body: String| {
        let mut request = app.request(Method::POST, "/api/auth/register").body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let malformed = post(Some("application/json"), "{\"email\": ".into()).await.unwrap();
    expect_error(malformed, StatusCode::BAD_REQUEST).await;
    let wrong_type = post(Some("application/json"), json!({"email": 5, "password": PASSWORD, "name": "x"}).to_string());
    expect_error(wrong_type.await.unwrap(), StatusCode::BAD_REQUEST).await;
    let missing = post(Some("application/json"), json!({"email": "a@b.co"}).to_string()).await.unwrap();
    let body = expect_error(missing, StatusCode::BAD_REQUEST).await;
    assert!(body["details"].is_object(), "{body}");
    expect_error(post(Some("text/plain"), "{}".into()).await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    expect_error(post(None, "{}".into()).await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let huge = json!({"email": "a@b.co", "password": PASSWORD, "name": "x".repeat(2000)}).to_string();
    expect_error(post(Some("application/json"), huge).await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn logging_in_works_with_the_right_password_only() {
    let app = TestApp::spawn().await;
    expect_status(app.register("alan@example.com", PASSWORD, "Alan").await, StatusCode::CREATED).await;
    let body = expect_status(app.login("ALAN@example.com", PASSWORD).await, StatusCode::OK).await;
    assert_eq!(body["user"]["email"], "alan@example.com");
    expect_status(app.profile(body["token"].as_str().unwrap()).await, StatusCode::OK).await;

    let wrong = expect_error(app.login("alan@example.com", "wrong password").await, StatusCode::UNAUTHORIZED).await;
    let unknown = expect_error(app.login("nobody@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong["error"], unknown["error"], "login must not reveal which emails exist");
    expect_error(app.login("not-an-email", PASSWORD).await, StatusCode::BAD_REQUEST).await;
    expect_error(app.login("alan@example.com", "").await, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn an_admin_email_registers_as_admin() {
    let app = TestApp::spawn().await;
    let (_, user) = app.signed_up_admin().await;
    assert_eq!(user["role"], "admin");
    assert_eq!(user["email"], ADMIN_EMAIL);
}

#[tokio::test]
async fn protected_routes_refuse_missing_and_malformed_tokens() {
    let app = TestApp::spawn().await;
    let bare = app.request(Method::GET, "/api/auth/profile").send().await.unwrap();
    expect_error(bare, StatusCode::UNAUTHORIZED).await;
    let basic = app.request(Method::GET, "/api/auth/profile").header("authorization", "Basic YTpi").send().await;
    expect_error(basic.unwrap(), StatusCode::UNAUTHORIZED).await;
    for token in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"] {
        expect_error(app.profile(token).await, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signed_up_customer().await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = "admin".into();
    let tampered_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);
    expect_error(app.profile(&tampered).await, StatusCode::UNAUTHORIZED).await;
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    expect_error(app.profile(&format!("{none_header}.{tampered_payload}.")).await, StatusCode::UNAUTHORIZED).await;
    let other_secret = TestApp::spawn().await;
    let (foreign, _) = other_secret.signed_up_customer().await;
    expect_error(app.profile(&foreign).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn_with(&[("JWT_TTL_SECONDS", "1")]).await;
    let (token, _) = app.signed_up_customer().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let body = expect_error(app.profile(&token).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["error"], "token has expired");
}

#[tokio::test]
async fn a_token_is_refused_after_logout_and_others_keep_working() {
    let app = TestApp::spawn().await;
    let (first, user) = app.signed_up_customer().await;
    let second = app.token_for(user["email"].as_str().unwrap(), PASSWORD).await;
    expect_status(app.logout(&first).await, StatusCode::NO_CONTENT).await;
    let body = expect_error(app.profile(&first).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["error"], "token has been revoked");
    expect_error(app.logout(&first).await, StatusCode::UNAUTHORIZED).await;
    expect_status(app.profile(&second).await, StatusCode::OK).await;
}

#[tokio::test]
async fn the_profile_name_and_email_can_change() {
    let app = TestApp::spawn().await;
    let (token, user) = app.signed_up_customer().await;
    let old_email = user["email"].as_str().unwrap().to_owned();
    let update = json!({"name": "Renamed", "email": "New.Address@Example.com"});
    let body = expect_status(app.update_profile(&token, update).await, StatusCode::OK).await;
    assert_eq!(body["user"]["name"], "Renamed");
    assert_eq!(body["user"]["email"], "new.address@example.com");
    assert_eq!(body["user"]["createdAt"], user["createdAt"]);
    assert_ne!(body["user"]["updatedAt"], user["updatedAt"]);
    expect_status(app.login("new.address@example.com", PASSWORD).await, StatusCode::OK).await;
    expect_error(app.login(&old_email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    expect_status(app.register(&old_email, PASSWORD, "Reuses the old email").await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn changing_to_a_taken_email_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, other) = app.signed_up_customer().await;
    let (token, user) = app.signed_up_customer().await;
    let update = json!({"name": "Should Not Stick", "email": other["email"]});
    expect_error(app.update_profile(&token, update).await, StatusCode::CONFLICT).await;
    let profile = expect_status(app.profile(&token).await, StatusCode::OK).await;
    assert_eq!(profile["user"], user);
}

#[tokio::test]
async fn a_new_password_needs_the_current_one() {
    let app = TestApp::spawn().await;
    let (token, user) = app.signed_up_customer().await;
    let email = user["email"].as_str().unwrap();
    let missing = expect_error(
        app.update_profile(&token, json!({"password": "brand new secret"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(missing["details"]["currentPassword"].is_string(), "{missing}");
    let wrong = json!({"password": "brand new secret", "currentPassword": "not it at all"});
    expect_error(app.update_profile(&token, wrong).await, StatusCode::UNAUTHORIZED).await;
    let weak = json!({"password": "short", "currentPassword": PASSWORD});
    expect_error(app.update_profile(&token, weak).await, StatusCode::BAD_REQUEST).await;
    expect_status(app.login(email, PASSWORD).await, StatusCode::OK).await;

    let right = json!({"password": "brand new secret", "currentPassword": PASSWORD});
    let changed = expect_status(app.update_profile(&token, right).await, StatusCode::OK).await;
    assert!(changed["token"].is_string(), "a password change hands back a new token: {changed}");
    expect_status(app.login(email, "brand new secret").await, StatusCode::OK).await;
    expect_error(app.login(email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_password_change_signs_out_every_older_session() {
    let app = TestApp::spawn().await;
    let (first, user) = app.signed_up_customer().await;
    let email = user["email"].as_str().unwrap();
    let second = app.token_for(email, PASSWORD).await;

    let renamed = expect_status(app.update_profile(&first, json!({"name": "Renamed"})).await, StatusCode::OK).await;
    assert!(renamed.get("token").is_none(), "no new token without a password change: {renamed}");
    expect_status(app.profile(&second).await, StatusCode::OK).await;

    let change = json!({"password": "brand new secret", "currentPassword": PASSWORD});
    let changed = expect_status(app.update_profile(&first, change).await, StatusCode::OK).await;
    let fresh = changed["token"].as_str().unwrap().to_owned();
    for stale in [&first, &second] {
        let refused = expect_error(app.profile(stale).await, StatusCode::UNAUTHORIZED).await;
        assert!(refused["error"].as_str().unwrap().contains("password change"), "{refused}");
    }
    let profile = expect_status(app.profile(&fresh).await, StatusCode::OK).await;
    assert_eq!(profile["user"]["name"], "Renamed");
    let after = app.token_for(email, "brand new secret").await;
    expect_status(app.profile(&after).await, StatusCode::OK).await;
}

#[tokio::test]
async fn the_role_can_never_be_changed_through_the_profile() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signed_up_customer().await;
    let body = expect_error(app.update_profile(&token, json!({"role": "admin"})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["details"]["role"], "unknown field");
    expect_error(app.update_profile(&token, json!({})).await, StatusCode::BAD_REQUEST).await;
    expect_error(app.update_profile(&token, json!({"name": "  "})).await, StatusCode::BAD_REQUEST).await;
    let profile = expect_status(app.profile(&token).await, StatusCode::OK).await;
    assert_eq!(profile["user"]["role"], "customer");
}

#[tokio::test]
async fn a_restart_keeps_users_and_their_tokens() {
    let app = TestApp::spawn().await;
    let (token, user) = app.signed_up_customer().await;
    let app = app.restart().await;
    let profile = expect_status(app.profile(&token).await, StatusCode::OK).await;
    assert_eq!(profile["user"], user);
    expect_status(app.login(user["email"].as_str().unwrap(), PASSWORD).await, StatusCode::OK).await;
}

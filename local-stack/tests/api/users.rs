//! User management: the operator's bootstrap of the first admin, admins
//! listing users, changing roles and disabling accounts.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, expect_error, expect_status};

pub fn stdout_of(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn the_operator_makes_the_first_admin_out_of_band_and_registration_never_does() {
    // No ADMIN_EMAILS at all: what a deployed stack has.
    let mut app = TestApp::spawn_with(&[("ADMIN_EMAILS", "")]).await;
    let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = expect_status(app.register(&email, PASSWORD, "Shop Owner").await, StatusCode::CREATED).await;
    assert_eq!(registered["user"]["role"], "customer");
    let token = registered["token"].as_str().unwrap().to_owned();
    expect_error(app.create_category(&token, "Tools").await, StatusCode::FORBIDDEN).await;

    let output = app.command(&["admin", "grant", &email]).await;
    assert!(output.status.success(), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("is now admin"), "{}", stdout_of(&output));
    // The same token: the role is read from the store on every request.
    expect_status(app.create_category(&token, "Tools").await, StatusCode::CREATED).await;

    let output = app.command(&["admin", "revoke", &email]).await;
    assert!(!output.status.success(), "the last admin was revoked");
    assert!(stdout_of(&output).contains("last active admin"), "{}", stdout_of(&output));
    let output = app.command(&["admin", "grant", "nobody@example.com"]).await;
    assert!(!output.status.success());
    assert!(stdout_of(&output).contains("register it first"), "{}", stdout_of(&output));
}

#[tokio::test]
async fn an_admin_lists_users_newest_first_filtered_and_paged() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut ids = Vec::new();
    for n in 0..3 {
        let email = format!("zed{n}-{tag}@example.com");
        let body = expect_status(app.register(&email, PASSWORD, "Zed Listed").await, StatusCode::CREATED).await;
        ids.push(body["user"]["id"].as_str().unwrap().to_owned());
    }
    let first = expect_status(app.users(&admin, "q=ZED&role=customer&limit=2").await, StatusCode::OK).await;
    let page: Vec<&str> = first["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(page, vec![ids[2].as_str(), ids[1].as_str()], "newest first, prefix any case");
    assert!(first["items"][0].get("passwordHash").is_none());
    let cursor = first["nextCursor"].as_str().unwrap();
    let second =
        expect_status(app.users(&admin, &format!("q=zed&role=customer&limit=2&cursor={cursor}")).await, StatusCode::OK)
            .await;
    assert_eq!(second["items"][0]["id"], ids[0].as_str());
    assert_eq!(second["nextCursor"], json!(null));
    // A cursor is bound to its filters.
    expect_error(app.users(&admin, &format!("q=other&limit=2&cursor={cursor}")).await, StatusCode::BAD_REQUEST).await;
    let admins = expect_status(app.users(&admin, "role=admin").await, StatusCode::OK).await;
    assert_eq!(admins["items"].as_array().unwrap().len(), 1);
    let one = expect_status(app.user(&admin, &ids[0]).await, StatusCode::OK).await;
    assert_eq!((one["status"].as_str(), one["role"].as_str()), (Some("active"), Some("customer")));
}

#[tokio::test]
async fn bad_user_management_requests_get_clear_errors() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    let (_, customer) = app.signed_up_customer().await;
    let id = customer["id"].as_str().unwrap();
    let body = expect_error(app.users(&admin, "role=root&limit=0&color=red").await, StatusCode::BAD_REQUEST).await;
    for field in ["role", "limit", "color"] {
        assert!(body["details"][field].is_string(), "{field}: {body}");
    }
    expect_error(app.set_user_role(&admin, id, "superuser").await, StatusCode::BAD_REQUEST).await;
    expect_error(app.set_user_status(&admin, id, "banned").await, StatusCode::BAD_REQUEST).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    expect_error(app.user(&admin, &unknown).await, StatusCode::NOT_FOUND).await;
    expect_error(app.set_user_role(&admin, &unknown, "admin").await, StatusCode::NOT_FOUND).await;
    expect_error(app.user(&admin, "not-a-uuid").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request_of_the_same_token() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    let (token, customer) = app.signed_up_customer().await;
    let id = customer["id"].as_str().unwrap();
    expect_error(app.create_category(&token, "Garden").await, StatusCode::FORBIDDEN).await;
    let promoted = expect_status(app.set_user_role(&admin, id, "admin").await, StatusCode::OK).await;
    assert_eq!(promoted["role"], "admin");
    expect_status(app.create_category(&token, "Garden").await, StatusCode::CREATED).await;
    expect_status(app.set_user_role(&admin, id, "customer").await, StatusCode::OK).await;
    expect_error(app.create_category(&token, "Kitchen").await, StatusCode::FORBIDDEN).await;
    // Still signed in as a customer: a role change is not a sign-out.
    expect_status(app.profile(&token).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_and_refused_while_their_orders_stay() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin, "Books").await, StatusCode::CREATED).await;
    let product = app.product(&admin, "Atlas", "Books", 20.0, 5).await;
    let (token, customer) = app.signed_up_customer().await;
    let (id, email) = (customer["id"].as_str().unwrap(), customer["email"].as_str().unwrap());
    let order = json!({"items": [{"productId": product["id"], "quantity": 1}]});
    expect_status(app.place_order(&token, order).await, StatusCode::CREATED).await;

    let disabled = expect_status(app.set_user_status(&admin, id, "disabled").await, StatusCode::OK).await;
    assert_eq!(disabled["status"], "disabled");
    expect_error(app.profile(&token).await, StatusCode::UNAUTHORIZED).await;
    let refused = expect_error(app.login(email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    let wrong = expect_error(app.login(email, "not the password").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(refused["error"], wrong["error"], "a disabled account looks like a wrong password");
    let orders = expect_status(app.orders(&admin, &format!("userId={id}")).await, StatusCode::OK).await;
    assert_eq!(orders["items"].as_array().unwrap().len(), 1, "their orders stay");

    expect_status(app.set_user_status(&admin, id, "active").await, StatusCode::OK).await;
    let fresh = app.token_for(email, PASSWORD).await;
    expect_status(app.profile(&fresh).await, StatusCode::OK).await;
    expect_error(app.profile(&token).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn the_last_active_admin_can_neither_demote_nor_disable_themself() {
    let app = TestApp::spawn().await;
    let (admin, me) = app.signed_up_admin().await;
    let id = me["id"].as_str().unwrap();
    expect_error(app.set_user_role(&admin, id, "customer").await, StatusCode::CONFLICT).await;
    expect_error(app.set_user_status(&admin, id, "disabled").await, StatusCode::CONFLICT).await;
    // With a second admin, stepping down is allowed.
    let (_, colleague) = app.signed_up_customer().await;
    let colleague_id = colleague["id"].as_str().unwrap();
    expect_status(app.set_user_role(&admin, colleague_id, "admin").await, StatusCode::OK).await;
    let stepped_down = expect_status(app.set_user_role(&admin, id, "customer").await, StatusCode::OK).await;
    assert_eq!(stepped_down["role"], "customer");
    expect_error(app.users(&admin, "").await, StatusCode::FORBIDDEN).await;
}

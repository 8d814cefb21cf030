//! What the gateway and the shared pipeline add to every route: health,
//! rate limits, routing errors, security headers, CORS.

use reqwest::{Method, StatusCode};

use crate::helpers::{PASSWORD, TestApp, expect_error, expect_status};

#[tokio::test]
async fn health_reports_the_store_and_the_cache() {
    let app = TestApp::spawn().await;
    let body = expect_status(app.health().await, StatusCode::OK).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["cache"], "ok");
    assert!(body["version"].is_string());
}

#[tokio::test]
async fn health_is_degraded_but_up_when_the_cache_is_down() {
    // Port 9 (discard) has no listener here: every cache call fails fast.
    let app = TestApp::spawn_with(&[("CACHE_URL", "redis://127.0.0.1:9")]).await;
    let body = expect_status(app.health().await, StatusCode::OK).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["cache"], "down");
    // The API keeps serving, rate limits counted in memory.
    let (token, _) = app.signed_up_customer().await;
    let response = app.profile(&token).await;
    assert!(response.headers().contains_key("x-ratelimit-remaining"));
    expect_status(response, StatusCode::OK).await;
}

/// The TLS-only Redis that local-stack/test-all.sh starts, and the CA file
/// that signed its certificate. `None` (a skip with a note) only outside CI.
fn tls_redis() -> Option<(String, String)> {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    match (variable("SHOP_TEST_REDIS_TLS_URL"), variable("SHOP_TEST_REDIS_TLS_CA")) {
        (Some(url), Some(ca)) => Some((url, ca)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("SHOP_TEST_REDIS_TLS_URL and SHOP_TEST_REDIS_TLS_CA must be set under CI=true")
        }
        _ => {
            eprintln!("note: no TLS Redis named; skipping (run local-stack/test-all.sh)");
            None
        }
    }
}

#[tokio::test]
async fn the_cache_is_reached_over_verified_tls() {
    // ElastiCache Serverless speaks TLS only (rediss://), with a certificate
    // from a public CA in the system's trust store; here the trust store is
    // SSL_CERT_FILE naming the test CA.
    let Some((url, ca)) = tls_redis() else { return };
    let app = TestApp::spawn_with(&[("CACHE_URL", &url), ("SSL_CERT_FILE", &ca)]).await;
    let body = expect_status(app.health().await, StatusCode::OK).await;
    assert_eq!(body["checks"]["cache"], "ok", "{body}");
    let (token, _) = app.signed_up_customer().await;
    expect_status(app.profile(&token).await, StatusCode::OK).await;

    // A server that does not trust the CA refuses the cache: the
    // certificate is verified, not merely encrypted to.
    let untrusting = TestApp::spawn_with(&[("CACHE_URL", &url), ("SSL_CERT_FILE", "/dev/null")]).await;
    let body = expect_status(untrusting.health().await, StatusCode::OK).await;
    assert_eq!(body["checks"]["cache"], "down", "{body}");
}

#[tokio::test]
async fn past_the_auth_limit_requests_get_429_with_retry_after() {
    let app = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_MAX", "3"), ("RATE_LIMIT_WINDOW_SECONDS", "600")]).await;
    for expected_remaining in ["2", "1", "0"] {
        let response = app.login("nobody@example.com", PASSWORD).await;
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], expected_remaining);
        expect_error(response, StatusCode::UNAUTHORIZED).await;
    }
    let refused = app.login("nobody@example.com", PASSWORD).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let reset: u64 = refused.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > 1_700_000_000, "reset is a unix time: {reset}");
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS).await;
    // Health is outside /api and never limited.
    expect_status(app.health().await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_forwarded_for_header_does_not_escape_the_limit() {
    let app = TestApp::spawn_with(&[("AUTH_RATE_LIMIT_MAX", "2")]).await;
    for i in 0..4 {
        let response = app
            .request(Method::POST, "/api/auth/login")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&serde_json::json!({"email": "nobody@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let expected = if i < 2 { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
        expect_error(response, expected).await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    expect_error(app.request(Method::GET, "/api/nothing-here").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    let response = app.request(Method::DELETE, "/api/auth/profile").send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, PUT");
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::spawn().await;
    let responses = [
        app.health().await,
        app.login("nobody@example.com", PASSWORD).await,
        app.request(Method::GET, "/nowhere").send().await.unwrap(),
    ];
    for response in responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(headers.contains_key("content-security-policy"));
        assert!(headers.contains_key("strict-transport-security"));
        assert!(headers.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn a_cors_preflight_is_answered() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::OPTIONS, "/api/auth/login")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(response.headers()["access-control-allow-headers"].to_str().unwrap().contains("Authorization"));
}

#[tokio::test]
async fn with_the_store_down_health_and_data_routes_answer_503() {
    let app = TestApp::spawn_with(&[
        ("STORE", "dynamodb"),
        // Nothing listens on port 9: every store call fails fast.
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9"),
        ("TABLE_NAME", "shop-unreachable"),
    ])
    .await;
    let body = expect_status(app.health().await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["store"], "down");
    let error = expect_error(app.login("nobody@example.com", PASSWORD).await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(!error["error"].as_str().unwrap().contains("127.0.0.1"), "no internals leak: {error}");
}

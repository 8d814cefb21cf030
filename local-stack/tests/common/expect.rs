//! Assertions on an API answer, shared by the black-box suites (against
//! `shop-local` and against the functions behind `sam local`).

use reqwest::{Response, StatusCode};
use serde_json::Value;

/// Asserts the status (printing the body when it differs) and returns the
/// JSON body (`null` for an empty one).
pub async fn expect_status(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "body: {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
}

/// Asserts a JSON error body of DESIGN.md's shape and returns it.
pub async fn expect_error(response: Response, expected: StatusCode) -> Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = expect_status(response, expected).await;
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    assert!(body["timestamp"].as_str().is_some(), "{body}");
    body
}

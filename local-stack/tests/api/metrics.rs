//! Business and cache metrics: the CloudWatch EMF lines on stdout.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, expect_error, expect_status};

/// The sum of `metric` over every EMF document written so far.
fn total(documents: &[Value], metric: &str) -> f64 {
    documents.iter().filter_map(|document| document[metric].as_f64()).sum()
}

/// Waits (briefly: the lines are written before each response) until the
/// server's output holds `expected`, then returns every document.
async fn documents_once(app: &TestApp, expected: &[(&str, f64)]) -> Vec<Value> {
    for _ in 0..50 {
        let documents = app.metric_documents();
        if expected.iter().all(|(metric, value)| total(&documents, metric) >= *value) {
            return documents;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.metric_documents()
}

#[tokio::test]
async fn business_and_cache_events_become_emf_metrics() {
    let app = TestApp::spawn_with(&[("METRICS", "emf"), ("METRICS_NAMESPACE", "ShopTest")]).await;
    let (admin, _) = app.signed_up_admin().await;
    let (customer, user) = app.signed_up_customer().await;
    expect_error(app.login(user["email"].as_str().unwrap(), "not the password").await, StatusCode::UNAUTHORIZED).await;
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    let product = app.product(&admin, "Rake", "Garden", 12.5, 3).await;
    let id = product["id"].as_str().unwrap();
    app.settled().await;
    // The first read misses; the fill lands beside its answer, so the next
    // read may miss too: read until one is a hit.
    assert!(app.read_until_cached(&format!("/api/products/{id}")).await.is_some(), "the page is never cached");

    let two = json!({"items": [{"productId": id, "quantity": 2}]});
    let order = expect_status(app.place_order(&customer, two).await, StatusCode::CREATED).await;
    let too_many = json!({"items": [{"productId": id, "quantity": 2}]});
    expect_error(app.place_order(&customer, too_many).await, StatusCode::CONFLICT).await;
    let order_id = order["id"].as_str().unwrap();
    expect_status(app.set_order_status(&customer, order_id, "cancelled").await, StatusCode::OK).await;

    let expected = [
        ("UsersRegistered", 2.0),
        ("LoginsFailed", 1.0),
        ("CacheHits", 1.0),
        ("OrdersPlaced", 1.0),
        ("OrderValue", 25.0),
        ("OrdersOutOfStock", 1.0),
        ("OrdersCancelled", 1.0),
    ];
    app.settled().await;
    let (documents, events): (Vec<Value>, Vec<Value>) =
        documents_once(&app, &expected).await.into_iter().partition(|d| d.get("Consumer").is_none());
    // The change feed's metrics, one document per value, per consumer:
    // 2 registrations, the category, the product, its order (the order and
    // the stock reserved), its cancel (the order and the stock returned).
    assert_eq!(total(&events, "EventsPublished"), 8.0, "{events:#?}");
    for consumer in ["events-record", "events-invalidate-cache"] {
        let lags: Vec<&Value> =
            events.iter().filter(|d| d["Consumer"] == consumer && d["DeliveryLag"].is_number()).collect();
        assert_eq!(lags.len(), 8, "{consumer}: {events:#?}");
        assert_eq!(
            lags[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Service"], ["Service", "Consumer"]])
        );
    }
    for (metric, value) in expected {
        assert_eq!(total(&documents, metric), value, "{metric} in {documents:#?}");
    }
    assert!(total(&documents, "CacheMisses") >= 1.0, "the first read misses: {documents:#?}");
    assert_eq!(total(&documents, "RateLimited"), 0.0);
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ShopTest");
        assert_eq!(document["Service"], "shop-api");
        assert!(document["_aws"]["Timestamp"].is_u64(), "{document}");
        assert!(document["requestId"].is_string(), "{document}");
        // Every declared metric has its value in the document.
        for definition in directive["Metrics"].as_array().unwrap() {
            assert!(document[definition["Name"].as_str().unwrap()].is_number(), "{document}");
        }
    }
    let placed: Vec<&Value> = documents.iter().filter(|d| d.get("OrdersPlaced").is_some()).collect();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0]["function"], "orders-create");
}

#[tokio::test]
async fn refused_requests_are_counted_and_a_local_server_writes_no_metrics_by_default() {
    let limited = TestApp::spawn_with(&[("METRICS", "emf"), ("AUTH_RATE_LIMIT_MAX", "1")]).await;
    expect_error(limited.login("nobody@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    expect_error(limited.login("nobody@example.com", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS).await;
    let documents = documents_once(&limited, &[("RateLimited", 1.0)]).await;
    assert_eq!(total(&documents, "RateLimited"), 1.0, "{documents:#?}");
    assert_eq!(total(&documents, "LoginsFailed"), 1.0, "{documents:#?}");

    let quiet = TestApp::spawn().await;
    quiet.signed_up_customer().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(quiet.metric_documents().is_empty());
}

//! The asynchronous half through the running server, on the backend under
//! test: every change in the admin event log once, delivery that survives a
//! crash, and unpaid reservations that expire.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, expect_status};

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event["type"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    counts
}

fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

/// A shopper's day: a category, a product of 6, an order of 2 (the stock
/// goes below 5), its cancel, a price change, the product deleted.
async fn a_day_of_changes(app: &TestApp, admin: &str, customer: &str) -> String {
    expect_status(app.create_category(admin, "Garden").await, StatusCode::CREATED).await;
    let product = app.product(admin, "Rake", "Garden", 10.0, 6).await;
    let id = product["id"].as_str().unwrap().to_owned();
    let order = expect_status(
        app.place_order(customer, json!({"items": [{"productId": id, "quantity": 2}]})).await,
        StatusCode::CREATED,
    )
    .await;
    let order_id = order["id"].as_str().unwrap();
    expect_status(app.set_order_status(customer, order_id, "cancelled").await, StatusCode::OK).await;
    expect_status(app.update_product(admin, &id, json!({"price": 15.0})).await, StatusCode::OK).await;
    expect_status(app.delete_product(admin, &id).await, StatusCode::NO_CONTENT).await;
    id
}

fn day_of_changes_events() -> BTreeMap<String, usize> {
    expected(&[
        ("user.registered", 2),
        ("category.created", 1),
        ("product.created", 1),
        // Reserved, returned, repriced.
        ("product.updated", 3),
        ("product.stock_low", 1),
        ("order.placed", 1),
        ("order.cancelled", 1),
        ("product.deleted", 1),
    ])
}

#[tokio::test]
async fn every_change_is_in_the_admin_event_log_once_newest_first() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    let (customer, _) = app.signed_up_customer().await;
    let product_id = a_day_of_changes(&app, &admin, &customer).await;
    app.settled().await;

    let events = app.all_events(&admin).await;
    assert_eq!(counts(&events), day_of_changes_events(), "{events:#?}");
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "unique ids");
    let times: Vec<&str> = events.iter().map(|e| e["occurredAt"].as_str().unwrap()).collect();
    let parsed: Vec<time::OffsetDateTime> = times
        .iter()
        .map(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap())
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert!(events.iter().all(|e| e["schemaVersion"] == 1));

    let repriced = events
        .iter()
        .find(|e| e["type"] == "product.updated" && e["data"]["changes"].get("price").is_some())
        .expect("the price change");
    assert_eq!(repriced["data"]["productId"], product_id.as_str());
    assert_eq!(repriced["data"]["changes"]["price"], json!({"old": 10.0, "new": 15.0}));
    let cancelled = events.iter().find(|e| e["type"] == "order.cancelled").unwrap();
    assert_eq!(
        (cancelled["data"]["from"].clone(), cancelled["data"]["to"].clone()),
        (json!("pending"), json!("cancelled"))
    );
    assert_eq!(cancelled["data"]["by"]["kind"], "user");
    assert_eq!(cancelled["data"]["by"]["role"], "customer");
    let low = events.iter().find(|e| e["type"] == "product.stock_low").unwrap();
    assert_eq!((low["data"]["stock"].clone(), low["data"]["threshold"].clone()), (json!(4), json!(5)));

    // One type; bad filters are named; only admins read the log.
    let only = expect_status(app.events(&admin, "type=product.updated&limit=2").await, StatusCode::OK).await;
    assert_eq!(only["items"].as_array().unwrap().len(), 2);
    assert!(only["items"].as_array().unwrap().iter().all(|e| e["type"] == "product.updated"));
    let cursor = only["nextCursor"].as_str().unwrap();
    let rest = expect_status(
        app.events(&admin, &format!("type=product.updated&limit=2&cursor={cursor}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    let wrong_scope = app.events(&admin, &format!("type=order.placed&cursor={cursor}")).await;
    expect_error(wrong_scope, StatusCode::BAD_REQUEST).await;
    let bad =
        expect_error(app.events(&admin, "type=order.shipped&limit=0&color=red").await, StatusCode::BAD_REQUEST).await;
    for field in ["type", "limit", "color"] {
        assert!(bad["details"][field].is_string(), "{bad}");
    }
    expect_error(app.events(&customer, "").await, StatusCode::FORBIDDEN).await;
    let anonymous = app.request(reqwest::Method::GET, "/api/events").send().await.unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn changes_not_delivered_before_a_crash_are_delivered_after_it_once() {
    // With the feed off, changes wait in it (the outbox, the stream) and
    // nothing reaches the consumers; the server is then killed outright.
    let mut app = TestApp::spawn_with(&[("EVENT_FEED", "off")]).await;
    let (admin, _) = app.signed_up_admin().await;
    let (customer, _) = app.signed_up_customer().await;
    a_day_of_changes(&app, &admin, &customer).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.all_events(&admin).await.is_empty(), "nothing was delivered");

    app.set_env("EVENT_FEED", "on");
    app.crash_and_restart().await;
    app.settled().await;
    let events = app.all_events(&admin).await;
    assert_eq!(counts(&events), day_of_changes_events(), "{events:#?}");

    // Delivered changes were acknowledged: another crash replays nothing.
    app.crash_and_restart().await;
    expect_status(app.health().await, StatusCode::OK).await;
    app.settled().await;
    let metrics = app.request(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "shop_events_published_total 0"), "{metrics}");
    assert_eq!(app.all_events(&admin).await, events);
}

#[tokio::test]
async fn an_unpaid_reservation_expires_and_returns_its_stock_once() {
    let app = TestApp::spawn_with(&[("ORDER_RESERVATION_SECONDS", "2")]).await;
    let (admin, _) = app.signed_up_admin().await;
    let (customer, _) = app.signed_up_customer().await;
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    let product = app.product(&admin, "Hoe", "Garden", 8.0, 10).await;
    let id = product["id"].as_str().unwrap();
    let order = |quantity: u64| json!({"items": [{"productId": id, "quantity": quantity}]});
    let unpaid = expect_status(app.place_order(&customer, order(3)).await, StatusCode::CREATED).await;
    let paid = expect_status(app.place_order(&customer, order(4)).await, StatusCode::CREATED).await;
    let (unpaid_id, paid_id) = (unpaid["id"].as_str().unwrap(), paid["id"].as_str().unwrap());
    expect_status(app.set_order_status(&admin, paid_id, "confirmed").await, StatusCode::OK).await;
    let refused = app.set_order_status(&admin, unpaid_id, "expired").await;
    expect_error(refused, StatusCode::CONFLICT).await;

    let mut status = String::new();
    for _ in 0..100 {
        let current = expect_status(app.order(&customer, unpaid_id).await, StatusCode::OK).await;
        status = current["status"].as_str().unwrap().to_owned();
        if status == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    let stock = |body: Value| body["stock"].as_u64().unwrap();
    assert_eq!(stock(expect_status(app.get_product(id).await, StatusCode::OK).await), 6, "3 back, 4 still sold");
    let kept = expect_status(app.order(&customer, paid_id).await, StatusCode::OK).await;
    assert_eq!(kept["status"], "confirmed");
    // Expired is final: no cancel returns the units a second time.
    expect_error(app.set_order_status(&customer, unpaid_id, "cancelled").await, StatusCode::CONFLICT).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(stock(expect_status(app.get_product(id).await, StatusCode::OK).await), 6, "returned once");
    let listed = expect_status(app.orders(&customer, "status=expired").await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    app.settled().await;
    let expired = expect_status(app.events(&admin, "type=order.expired").await, StatusCode::OK).await;
    let expired = expired["items"].as_array().unwrap();
    assert_eq!(expired.len(), 1, "{:#?}", app.all_events(&admin).await);
    assert_eq!(expired[0]["data"]["orderId"], unpaid_id);
    assert_eq!(expired[0]["data"]["by"], json!({"kind": "system", "process": "reservation-expiry"}));
}

//! Stripe payments, through the running server against localstripe (a
//! stateful fake of Stripe's API that signs its webhook deliveries with
//! Stripe's scheme; `SHOP_TEST_STRIPE_URL`, started by test-all.sh): cards
//! that pay, decline and ask for authentication; the webhook and its
//! signature; healing a lost webhook; refunds; the races with the
//! reservation expiry and with cancelling; Stripe unreachable.
//!
//! localstripe delivers each event once, about 1.5 s late, to every
//! registered endpoint; each test's server registers its own endpoint with
//! its own secret, so it also sees (and refuses, 400) other tests' events.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, expect_status, shop_with_env, stock};

/// localstripe's base URL; `None` (a skip with a note) only outside CI.
fn stripe_url() -> Option<String> {
    match std::env::var("SHOP_TEST_STRIPE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("SHOP_TEST_STRIPE_URL must be set under CI=true (local-stack/test-all.sh starts localstripe)")
        }
        _ => {
            eprintln!("skipped: SHOP_TEST_STRIPE_URL is not set (local-stack/test-all.sh starts localstripe)");
            None
        }
    }
}

/// The test's view of Stripe: what Stripe.js and Stripe's dashboard would
/// do, straight against localstripe.
struct Stripe {
    base: String,
    http: reqwest::Client,
}

impl Stripe {
    fn new(base: String) -> Self {
        Stripe { base, http: reqwest::Client::new() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth("sk_test_shop", Some(""))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "localstripe {path}: {status} {body}");
        body
    }

    /// Registers `app`'s webhook endpoint with `secret`.
    async fn register_webhook(&self, app: &TestApp, secret: &str) {
        let url = format!("{}/api/payments/stripe/webhook", app.base);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let response = self
            .http
            .post(format!("{}/_config/webhooks/{id}", self.base))
            .form(&[("url", url.as_str()), ("secret", secret)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "registering the webhook: {}", response.status());
    }

    /// A card PaymentMethod for `number`.
    async fn card(&self, number: &str) -> String {
        let form = [
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2031"),
            ("card[cvc]", "123"),
        ];
        self.call(reqwest::Method::POST, "/v1/payment_methods", &form).await["id"].as_str().unwrap().to_owned()
    }

    /// Confirms `intent` with `method` as Stripe.js would in the browser.
    async fn confirm_in_browser(&self, intent: &str, method: &str) -> Value {
        self.call(reqwest::Method::POST, &format!("/v1/payment_intents/{intent}"), &[("payment_method", method)]).await;
        self.call(reqwest::Method::POST, &format!("/v1/payment_intents/{intent}/confirm"), &[]).await
    }

    async fn intent(&self, id: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/v1/payment_intents/{id}"), &[]).await
    }

    /// What was refunded of the intent's payment.
    async fn refunded(&self, intent: &str) -> u64 {
        let list = self.call(reqwest::Method::GET, &format!("/v1/refunds?payment_intent={intent}"), &[]).await;
        list["data"].as_array().unwrap().iter().map(|refund| refund["amount"].as_u64().unwrap()).sum()
    }

    /// Every PaymentIntent made for `order` (paging through all of them).
    async fn intents_of(&self, order: &str) -> Vec<Value> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(last) => format!("/v1/payment_intents?limit=100&starting_after={last}"),
                None => "/v1/payment_intents?limit=100".to_owned(),
            };
            let page = self.call(reqwest::Method::GET, &path, &[]).await;
            let items = page["data"].as_array().unwrap();
            found.extend(items.iter().filter(|i| i["metadata"]["order_id"] == order).cloned());
            match (page["has_more"].as_bool(), items.last()) {
                (Some(true), Some(last)) => after = Some(last["id"].as_str().unwrap().to_owned()),
                _ => return found,
            }
        }
    }
}

fn webhook_secret() -> String {
    format!("whsec_{}", uuid::Uuid::new_v4().simple())
}

/// A shop paid through localstripe: (app, admin token, product ids, Stripe,
/// webhook secret). With `webhook`, its endpoint is registered.
async fn stripe_shop(
    products: &[(&str, f64, u64)],
    webhook: bool,
    extra: &[(&str, &str)],
) -> Option<(TestApp, String, Vec<String>, Stripe, String)> {
    let url = stripe_url()?;
    let secret = webhook_secret();
    let mut env = vec![
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_API_BASE", url.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_shop"),
        ("STRIPE_WEBHOOK_SECRET", secret.as_str()),
    ];
    env.extend_from_slice(extra);
    let (app, admin, ids) = shop_with_env(&env, products).await;
    let stripe = Stripe::new(url);
    if webhook {
        stripe.register_webhook(&app, &secret).await;
    }
    Some((app, admin, ids, stripe, secret))
}

/// Puts `quantity` of `product` in the cart and checks out: the 201's body.
async fn checked_out(app: &TestApp, token: &str, product: &str, quantity: u64) -> Value {
    expect_status(app.set_cart_line(token, product, quantity, None).await, StatusCode::OK).await;
    expect_status(app.checkout(token, None).await, StatusCode::CREATED).await
}

/// One unit of `product` ordered through `POST /api/orders`: the 201's body.
async fn placed(app: &TestApp, token: &str, product: &str) -> Value {
    let body = json!({"items": [{"productId": product, "quantity": 1}]});
    expect_status(app.place_order(token, body).await, StatusCode::CREATED).await
}

/// Reads the order until `check` holds; panics after 15 s.
async fn order_until(app: &TestApp, token: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut order = Value::Null;
    for _ in 0..150 {
        order = expect_status(app.order(token, id).await, StatusCode::OK).await;
        if check(&order) {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} within 15 s; the order: {order:#}");
}

#[tokio::test]
async fn checkout_answers_the_payment_and_the_webhook_confirms_a_browser_payment() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Mug", 12.5, 10)], true, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 2).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!((order["status"].as_str(), order["paymentStatus"].as_str()), (Some("pending"), Some("unpaid")));
    let payment = &order["payment"];
    assert_eq!((payment["amount"].as_u64(), payment["currency"].as_str()), (Some(2500), Some("usd")));
    assert!(payment["clientSecret"].as_str().unwrap().starts_with(payment["intentId"].as_str().unwrap()));
    let intent = payment["intentId"].as_str().unwrap();
    assert_eq!(stripe.intent(intent).await["amount"], 2500, "Stripe holds the order's total");

    let visa = stripe.card("4242424242424242").await;
    assert_eq!(stripe.confirm_in_browser(intent, &visa).await["status"], "succeeded");
    // Only the signed webhook tells the server: GET /api/orders/{id} never asks Stripe.
    let paid = order_until(&app, &token, id, "the webhook confirms the order", |o| o["paymentStatus"] == "paid").await;
    assert_eq!(paid["status"], "confirmed");
    let again = expect_status(app.pay(&token, id, None).await, StatusCode::CONFLICT).await;
    assert!(again["error"].as_str().unwrap().contains("confirmed"), "{again}");
    let view = expect_status(app.payment(&token, id).await, StatusCode::OK).await;
    assert_eq!((view["status"].as_str(), view["paymentStatus"].as_str()), (Some("succeeded"), Some("paid")));
}

#[tokio::test]
async fn a_server_side_payment_a_decline_and_a_retry_with_another_card() {
    let Some((app, admin, ids, stripe, _)) = stripe_shop(&[("Lamp", 30.0, 5)], true, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = placed(&app, &token, &ids[0]).await;
    let id = order["id"].as_str().unwrap();
    assert!(order["payment"]["clientSecret"].is_string(), "POST /api/orders answers the payment too: {order}");
    let declined = expect_status(app.pay(&token, id, Some("pm_card_chargeCustomerFail")).await, StatusCode::OK).await;
    assert_eq!(
        (declined["paymentStatus"].as_str(), declined["orderStatus"].as_str()),
        (Some("failed"), Some("pending"))
    );
    let first = declined["intentId"].as_str().unwrap().to_owned();
    // An admin cannot confirm what was not paid.
    let refused = expect_status(app.set_order_status(&admin, id, "confirmed").await, StatusCode::CONFLICT).await;
    assert!(refused["error"].as_str().unwrap().contains("payment"), "{refused}");

    let paid = expect_status(app.pay(&token, id, Some("pm_card_visa")).await, StatusCode::OK).await;
    assert_eq!((paid["paymentStatus"].as_str(), paid["orderStatus"].as_str()), (Some("paid"), Some("confirmed")));
    assert_ne!(paid["intentId"].as_str().unwrap(), first, "the declined intent was replaced");
    let intents = stripe.intents_of(id).await;
    let live: Vec<&Value> = intents.iter().filter(|i| i["status"] != "canceled").collect();
    assert_eq!(live.len(), 1, "one live intent per order: {intents:#?}");
    assert_eq!(stock(&app, &ids[0]).await, 4, "paying moves no stock");
}

#[tokio::test]
async fn a_card_that_needs_authentication_shows_requires_action_until_it_is_authenticated() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Vase", 15.0, 5)], true, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    let card = stripe.card("4000002500003155").await;
    let pending = expect_status(app.pay(&token, id, Some(&card)).await, StatusCode::OK).await;
    assert_eq!(
        (pending["status"].as_str(), pending["paymentStatus"].as_str()),
        (Some("requires_action"), Some("requires_action"))
    );
    let intent = pending["intentId"].as_str().unwrap();
    let secret = pending["clientSecret"].as_str().unwrap();
    stripe
        .call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent}/_authenticate"),
            &[("client_secret", secret), ("success", "true")],
        )
        .await;
    order_until(&app, &token, id, "the authenticated payment confirms the order", |o| o["status"] == "confirmed").await;
}

#[tokio::test]
async fn racing_payment_requests_make_one_live_intent() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Bowl", 8.0, 5)], false, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = placed(&app, &token, &ids[0]).await;
    let id = order["id"].as_str().unwrap().to_owned();
    // A declined card first: each request below replaces the declined
    // intent with one of its own, and only one of them may be saved.
    let declined = expect_status(app.pay(&token, &id, Some("pm_card_chargeCustomerFail")).await, StatusCode::OK).await;
    assert_eq!(declined["paymentStatus"], "failed");
    let answers = futures::future::join_all((0..5).map(|_| app.pay(&token, &id, Some("pm_card_visa")))).await;
    let mut paid_by = Vec::new();
    for answer in answers {
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert!(status == StatusCode::OK || status == StatusCode::CONFLICT, "{status} {body}");
        if status == StatusCode::OK {
            paid_by.push(body["intentId"].as_str().unwrap().to_owned());
        }
    }
    let intents = stripe.intents_of(&id).await;
    let succeeded: Vec<&Value> = intents.iter().filter(|i| i["status"] == "succeeded").collect();
    assert_eq!(succeeded.len(), 1, "one payment taken: {intents:#?}");
    let live: Vec<&Value> = intents.iter().filter(|i| i["status"] != "canceled").collect();
    assert_eq!(live.len(), 1, "every other intent cancelled: {intents:#?}");
    let view = expect_status(app.payment(&token, &id).await, StatusCode::OK).await;
    assert_eq!(view["intentId"], succeeded[0]["id"]);
    assert_eq!(view["paymentStatus"], "paid");
}

#[tokio::test]
async fn a_lost_webhook_heals_on_reading_the_payment() {
    // No endpoint registered: every webhook is lost.
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Tray", 20.0, 5)], false, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    stripe.confirm_in_browser(order["payment"]["intentId"].as_str().unwrap(), "pm_card_visa").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let unseen = expect_status(app.order(&token, id).await, StatusCode::OK).await;
    assert_eq!(unseen["paymentStatus"], "unpaid", "nothing told the server yet");
    let healed = expect_status(app.payment(&token, id).await, StatusCode::OK).await;
    assert_eq!((healed["paymentStatus"].as_str(), healed["orderStatus"].as_str()), (Some("paid"), Some("confirmed")));
}

#[tokio::test]
async fn the_expiry_applies_a_payment_whose_webhook_was_lost_instead_of_expiring() {
    let extra = [("ORDER_RESERVATION_SECONDS", "2")];
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Cup", 5.0, 3)], false, &extra).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 2).await;
    let id = order["id"].as_str().unwrap();
    stripe.confirm_in_browser(order["payment"]["intentId"].as_str().unwrap(), "pm_card_visa").await;
    let settled = order_until(&app, &token, id, "the expiry settles the order", |o| o["status"] != "pending").await;
    assert_eq!((settled["status"].as_str(), settled["paymentStatus"].as_str()), (Some("confirmed"), Some("paid")));
    assert_eq!(stock(&app, &ids[0]).await, 1, "the paid units stay sold");

    // An unpaid order does expire, and its intent can no longer be paid.
    let unpaid = checked_out(&app, &token, &ids[0], 1).await;
    let unpaid_id = unpaid["id"].as_str().unwrap();
    order_until(&app, &token, unpaid_id, "the unpaid order expires", |o| o["status"] == "expired").await;
    assert_eq!(stripe.intent(unpaid["payment"]["intentId"].as_str().unwrap()).await["status"], "canceled");
    assert_eq!(stock(&app, &ids[0]).await, 1, "its unit went back");
}

#[tokio::test]
async fn cancelling_a_paid_order_returns_the_stock_and_refunds_it_once() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Pan", 40.0, 5)], true, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 2).await;
    let id = order["id"].as_str().unwrap();
    let paid = expect_status(app.pay(&token, id, Some("pm_card_visa")).await, StatusCode::OK).await;
    let intent = paid["intentId"].as_str().unwrap().to_owned();
    let cancelled = expect_status(app.set_order_status(&token, id, "cancelled").await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(["refund_pending", "refunded"].contains(&cancelled["paymentStatus"].as_str().unwrap()), "{cancelled}");
    assert_eq!(stock(&app, &ids[0]).await, 5, "the units went back in the cancel's write");
    order_until(&app, &token, id, "the refund consumer refunds", |o| o["paymentStatus"] == "refunded").await;
    assert_eq!(stripe.refunded(&intent).await, 8000);
    refused(app.set_order_status(&token, id, "cancelled").await, StatusCode::CONFLICT, "cannot go").await;
    app.settled().await;
    assert_eq!(stripe.refunded(&intent).await, 8000, "a second cancel refunds nothing");
    let (admin, _) = (app.token_for(crate::helpers::ADMIN_EMAIL, crate::helpers::PASSWORD).await, ());
    let types: Vec<String> = app
        .all_events(&admin)
        .await
        .iter()
        .filter(|e| e["data"]["orderId"] == id)
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    for expected in ["order.placed", "order.paid", "order.cancelled", "order.refunded"] {
        assert!(types.iter().any(|t| t == expected), "{expected} in {types:?}");
    }
}

#[tokio::test]
async fn cancelling_an_unpaid_order_cancels_its_intent() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Jug", 9.0, 5)], true, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    let cancelled = expect_status(app.set_order_status(&token, id, "cancelled").await, StatusCode::OK).await;
    assert_eq!(cancelled["paymentStatus"], "unpaid");
    assert_eq!(stripe.intent(order["payment"]["intentId"].as_str().unwrap()).await["status"], "canceled");
    let refused = expect_status(app.pay(&token, id, Some("pm_card_visa")).await, StatusCode::CONFLICT).await;
    assert!(refused["error"].as_str().unwrap().contains("cancelled"), "{refused}");
}

#[tokio::test]
async fn the_webhook_refuses_bad_signatures_and_applies_each_event_once() {
    let Some((app, _, ids, stripe, secret)) = stripe_shop(&[("Bin", 10.0, 5)], false, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    let intent = order["payment"]["intentId"].as_str().unwrap();
    stripe.confirm_in_browser(intent, "pm_card_visa").await;
    let body = json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()), "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "object": "payment_intent", "status": "succeeded", "amount": 1000,
                            "currency": "usd", "metadata": {"order_id": id}}}
    })
    .to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let forged = shop::payments::signature::sign(body.as_bytes(), "whsec_someone_else", now);
    refused(deliver(&app, forged, body.clone()).await, StatusCode::BAD_REQUEST, "signature").await;
    let stale = shop::payments::signature::sign(body.as_bytes(), &secret, now - 301);
    refused(deliver(&app, stale, body.clone()).await, StatusCode::BAD_REQUEST, "signature").await;
    let tampered = shop::payments::signature::sign(body.as_bytes(), &secret, now);
    refused(deliver(&app, tampered, body.replace("1000", "1")).await, StatusCode::BAD_REQUEST, "signature").await;
    let unpaid = expect_status(app.order(&token, id).await, StatusCode::OK).await;
    assert_eq!(unpaid["paymentStatus"], "unpaid", "a refused delivery changes nothing");

    let signed = shop::payments::signature::sign(body.as_bytes(), &secret, now);
    let applied = expect_status(deliver(&app, signed.clone(), body.clone()).await, StatusCode::OK).await;
    assert_eq!(applied["note"], "applied");
    let twice = expect_status(deliver(&app, signed, body.clone()).await, StatusCode::OK).await;
    assert_eq!(twice["note"], "already applied");
    let paid = expect_status(app.order(&token, id).await, StatusCode::OK).await;
    assert_eq!((paid["status"].as_str(), paid["paymentStatus"].as_str()), (Some("confirmed"), Some("paid")));

    let other =
        json!({"id": "evt_other", "object": "event", "type": "customer.created", "data": {"object": {}}}).to_string();
    let ignored = expect_status(
        deliver(&app, shop::payments::signature::sign(other.as_bytes(), &secret, now), other).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ignored["note"], "event type ignored");
}

#[tokio::test]
async fn with_stripe_unreachable_checkout_still_reserves_and_the_payment_is_retried_later() {
    let Some(url) = stripe_url() else { return };
    let secret = webhook_secret();
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let env = [
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_API_BASE", closed.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_shop"),
        ("STRIPE_WEBHOOK_SECRET", secret.as_str()),
    ];
    let (app, _, ids) = shop_with_env(&env, &[("Fork", 3.0, 5)]).await;
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 2).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert!(order["payment"].is_null() && order["paymentError"].as_str().unwrap().contains("/payment"), "{order}");
    assert_eq!(stock(&app, &ids[0]).await, 3, "the order holds its units");
    let down = app.pay(&token, &id, Some("pm_card_visa")).await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers().contains_key("retry-after"));

    let mut app = app;
    app.set_env("STRIPE_API_BASE", &url);
    let app = app.restart().await;
    let paid = expect_status(app.pay(&token, &id, Some("pm_card_visa")).await, StatusCode::OK).await;
    assert_eq!(paid["paymentStatus"], "paid");
}

#[tokio::test]
async fn a_payment_landing_on_a_cancelled_order_is_refunded_in_full() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Knife", 25.0, 5)], false, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let intent = order["payment"]["intentId"].as_str().unwrap().to_owned();
    // Stripe unreachable while the shopper cancels: the intent stays open...
    let mut app = app;
    let url = app.env("STRIPE_API_BASE").unwrap().to_owned();
    app.set_env("STRIPE_API_BASE", &format!("http://127.0.0.1:{}", closed_port()));
    let app = app.restart().await;
    expect_status(app.set_order_status(&token, &id, "cancelled").await, StatusCode::OK).await;
    // ...and the shopper's browser pays it meanwhile (its webhook is lost).
    stripe.confirm_in_browser(&intent, "pm_card_visa").await;
    let mut app = app;
    app.set_env("STRIPE_API_BASE", &url);
    let app = app.restart().await;
    // The consumer of order.cancelled finds the payment and refunds it.
    let refunded =
        order_until(&app, &token, &id, "the late payment is refunded", |o| o["paymentStatus"] == "refunded").await;
    assert_eq!(refunded["status"], "cancelled");
    assert_eq!(stripe.refunded(&intent).await, 2500);
    assert_eq!(stock(&app, &ids[0]).await, 5, "the cancel returned the unit once");
}

#[tokio::test]
async fn a_late_payment_for_an_expired_order_takes_its_units_again_or_is_refunded() {
    let extra = [("ORDER_RESERVATION_SECONDS", "1")];
    let Some((app, admin, ids, stripe, _)) = stripe_shop(&[("Sieve", 7.0, 2)], false, &extra).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let first = checked_out(&app, &token, &ids[0], 1).await;
    let second = checked_out(&app, &token, &ids[0], 1).await;
    // The expiry cannot reach Stripe, so it expires both orders with their
    // intents open; the browser pays both meanwhile.
    let mut app = app;
    let url = app.env("STRIPE_API_BASE").unwrap().to_owned();
    app.set_env("STRIPE_API_BASE", &format!("http://127.0.0.1:{}", closed_port()));
    let app = app.restart().await;
    for order in [&first, &second] {
        let id = order["id"].as_str().unwrap();
        order_until(&app, &token, id, "the order expires", |o| o["status"] == "expired").await;
        stripe.confirm_in_browser(order["payment"]["intentId"].as_str().unwrap(), "pm_card_visa").await;
    }
    // Someone buys one of the two units back meanwhile.
    expect_status(app.update_product(&admin, &ids[0], json!({"stockDelta": -1})).await, StatusCode::OK).await;
    let mut app = app;
    app.set_env("STRIPE_API_BASE", &url);
    let app = app.restart().await;
    let one = expect_status(app.payment(&token, first["id"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!((one["orderStatus"].as_str(), one["paymentStatus"].as_str()), (Some("confirmed"), Some("paid")));
    // Refunded by this read or by the consumer of `order.expired`, whichever
    // holds the refund's lease first: once either way.
    let mut two = Value::Null;
    for _ in 0..100 {
        two = expect_status(app.payment(&token, second["id"].as_str().unwrap()).await, StatusCode::OK).await;
        if two["paymentStatus"] == "refunded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((two["orderStatus"].as_str(), two["paymentStatus"].as_str()), (Some("expired"), Some("refunded")));
    assert_eq!(stripe.refunded(second["payment"]["intentId"].as_str().unwrap()).await, 700);
    assert_eq!(stock(&app, &ids[0]).await, 0, "the first payment took the last unit again; nothing oversold");
}

#[tokio::test]
async fn payments_are_refused_clearly_when_off_or_for_someone_elses_order() {
    let (app, _, ids) = crate::helpers::shop_with(&[("Plate", 4.0, 5)]).await;
    let (token, _) = app.signed_up_customer().await;
    let order = placed(&app, &token, &ids[0]).await;
    let id = order["id"].as_str().unwrap();
    assert!(order.get("payment").is_none(), "no payment without a provider: {order}");
    assert_eq!(order["paymentStatus"], "unpaid");
    refused(app.pay(&token, id, None).await, StatusCode::CONFLICT, "payments are off").await;
    let Some((app, _, ids, _, _)) = stripe_shop(&[("Plate", 4.0, 5)], false, &[]).await else { return };
    let (owner, _) = app.signed_up_customer().await;
    let (stranger, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &owner, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    refused(app.pay(&stranger, id, None).await, StatusCode::NOT_FOUND, "order not found").await;
    refused(app.pay(&owner, id, Some("not a card!")).await, StatusCode::BAD_REQUEST, "validation").await;
    refused(app.pay(&owner, id, Some("pm_no_such_card")).await, StatusCode::UNPROCESSABLE_ENTITY, "Stripe").await;
    let unsigned = app
        .request(reqwest::Method::POST, "/api/payments/stripe/webhook")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    refused(unsigned, StatusCode::BAD_REQUEST, "Stripe-Signature").await;
}

/// Posts `body` to the webhook as Stripe would, with `signature`.
async fn deliver(app: &TestApp, signature: String, body: String) -> reqwest::Response {
    app.request(reqwest::Method::POST, "/api/payments/stripe/webhook")
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A JSON error with `status` whose message says `says`.
async fn refused(response: reqwest::Response, status: StatusCode, says: &str) -> Value {
    let body = expect_error(response, status).await;
    assert!(body["error"].as_str().unwrap().contains(says), "`{says}` in {body}");
    body
}

/// Accepts every connection waiting on `listener`: how many there were.
fn drain(listener: &std::net::TcpListener) -> usize {
    listener.set_nonblocking(true).unwrap();
    std::iter::from_fn(|| listener.accept().ok()).count()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A Stripe that accepts connections and never answers (frozen, or a
/// network black hole): each call gives up at its own timeout, within the
/// request's deadline; checkout still places and reserves the order and
/// answers; after `BREAKER_FAILURES` such calls Stripe's breaker opens and
/// the next requests no longer wait for it, and the payment route answers
/// 503 with `Retry-After` at once.
#[tokio::test]
async fn a_stripe_that_never_answers_costs_a_timeout_then_nothing_once_its_breaker_opens() {
    // Connections are accepted (the backlog) and never read from.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let secret = webhook_secret();
    let env = [
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_API_BASE", base.as_str()),
        ("STRIPE_SECRET_KEY", "sk_test_shop"),
        ("STRIPE_WEBHOOK_SECRET", secret.as_str()),
        ("BREAKER_FAILURES", "2"),
        ("BREAKER_COOLDOWN_MS", "60000"),
    ];
    let (app, _, ids) = shop_with_env(&env, &[("Spoon", 2.0, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    for _ in 0..2 {
        let order = checked_out(&app, &token, &ids[0], 1).await;
        assert!(order["payment"].is_null(), "{order}");
    }
    let metrics = app.request(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("shop_circuit_breaker_open{dependency=\"stripe\"} 1"), "the breaker opened");
    assert!(drain(&silent) >= 1, "the first checkouts did call Stripe");
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    assert!(order["paymentError"].as_str().unwrap().contains("circuit breaker"), "{order}");
    let refused = app.pay(&token, id, Some("pm_card_visa")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(drain(&silent), 0, "with the breaker open, no call reaches Stripe");
    assert_eq!(stock(&app, &ids[0]).await, 7, "every order holds its unit");
    drop(silent);
}

#[tokio::test]
async fn an_intent_cancelled_at_stripe_is_replaced_by_a_payable_one() {
    let Some((app, _, ids, stripe, _)) = stripe_shop(&[("Ladle", 6.0, 5)], false, &[]).await else { return };
    let (token, _) = app.signed_up_customer().await;
    let order = checked_out(&app, &token, &ids[0], 1).await;
    let id = order["id"].as_str().unwrap();
    let first = order["payment"]["intentId"].as_str().unwrap();
    // Cancelled in Stripe's dashboard, say: it can never be paid.
    stripe.call(reqwest::Method::POST, &format!("/v1/payment_intents/{first}/cancel"), &[]).await;
    let again = expect_status(app.pay(&token, id, None).await, StatusCode::OK).await;
    assert_ne!(again["intentId"].as_str().unwrap(), first);
    assert_eq!(again["status"], "requires_payment_method");
    let paid = expect_status(app.pay(&token, id, Some("pm_card_visa")).await, StatusCode::OK).await;
    assert_eq!(paid["paymentStatus"], "paid");
}

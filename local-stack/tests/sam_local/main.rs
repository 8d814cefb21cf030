//! The shopper's journey through the Lambda functions themselves, behind
//! `sam local start-api` (SAM's API Gateway emulation, one container per
//! function) against DynamoDB Local and Redis: what `shop-local` is tested
//! for, here through the real packages, so a wrong handler, a missing
//! variable or a route mapped to the wrong function fails.
//!
//! Run by `local-stack/test-all.sh` after `local-stack/sam-local.sh start`:
//! `SHOP_SAM_URL` is the API, `SHOP_SAM_ADMIN_ENV` the variables with which
//! `shop-local admin grant` reaches the same table (registration never
//! makes an admin in Lambda).

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

#[path = "../common/expect.rs"]
mod expect;
use expect::{expect_error, expect_status};

const PASSWORD: &str = "correct horse battery";

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn from_env() -> Self {
        let base = std::env::var("SHOP_SAM_URL").expect("SHOP_SAM_URL: run local-stack/sam-local.sh start");
        Api { base, client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap() }
    }

    async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn register(&self, email: &str) -> Value {
        let body = json!({"email": email, "password": PASSWORD, "name": "Sam Local"});
        expect_status(self.send(Method::POST, "/api/auth/register", None, Some(body)).await, StatusCode::CREATED).await
    }

    /// `PUT /api/orders/{id}/status` to `cancelled`.
    async fn cancel(&self, token: &str, order_id: &str) -> Response {
        let body = json!({"status": "cancelled"});
        self.send(Method::PUT, &format!("/api/orders/{order_id}/status"), Some(token), Some(body)).await
    }

    async fn login(&self, email: &str) -> String {
        let body = json!({"email": email, "password": PASSWORD});
        let session =
            expect_status(self.send(Method::POST, "/api/auth/login", None, Some(body)).await, StatusCode::OK).await;
        session["token"].as_str().unwrap().to_owned()
    }
}

/// `shop-local admin grant EMAIL` against the functions' table.
fn grant_admin(email: &str) {
    let path = std::env::var("SHOP_SAM_ADMIN_ENV").expect("SHOP_SAM_ADMIN_ENV");
    let variables: Vec<(String, String)> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_shop-local"))
        .args(["admin", "grant", email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(variables)
        .output()
        .unwrap();
    assert!(output.status.success(), "admin grant: {}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn a_shoppers_journey_through_the_lambda_functions() {
    let api = Api::from_env();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (admin_email, customer_email) = (format!("admin-{run}@example.com"), format!("buyer-{run}@example.com"));

    // Health through its function.
    let health = expect_status(api.send(Method::GET, "/health", None, None).await, StatusCode::OK).await;
    assert_eq!(health["checks"], json!({"cache": "ok", "store": "ok"}), "{health}");

    // Registration never makes an admin in Lambda: the operator's command does.
    let registered = api.register(&admin_email).await;
    assert_eq!(registered["user"]["role"], "customer", "{registered}");
    grant_admin(&admin_email);
    let admin = api.login(&admin_email).await;
    api.register(&customer_email).await;
    let customer = api.login(&customer_email).await;
    let profile =
        expect_status(api.send(Method::GET, "/api/auth/profile", Some(&admin), None).await, StatusCode::OK).await;
    assert_eq!(profile["user"]["role"], "admin", "{profile}");

    // The admin's catalog.
    let category = format!("Sam {}", &run[..8]);
    let created = api.send(Method::POST, "/api/categories", Some(&admin), Some(json!({"name": category}))).await;
    expect_status(created, StatusCode::CREATED).await;
    let product = json!({"name": "Lambda Lamp", "description": "lit by functions", "price": 24.5, "category": category, "stock": 3});
    let product =
        expect_status(api.send(Method::POST, "/api/products", Some(&admin), Some(product)).await, StatusCode::CREATED)
            .await;
    let product_id = product["id"].as_str().unwrap().to_owned();
    let customer_denied =
        api.send(Method::POST, "/api/categories", Some(&customer), Some(json!({"name": "Nope"}))).await;
    expect_error(customer_denied, StatusCode::FORBIDDEN).await;

    // An order with an Idempotency-Key, and its replay.
    let order_body = json!({"items": [{"productId": product_id, "quantity": 2}]});
    let place = |key: &'static str| {
        api.client
            .post(format!("{}/api/orders", api.base))
            .bearer_auth(&customer)
            .header("idempotency-key", key)
            .json(&order_body)
            .send()
    };
    let first = place("journey-key-1").await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let order = expect_status(first, StatusCode::CREATED).await;
    let again = place("journey-key-1").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_status(again, StatusCode::CREATED).await["id"], order["id"], "the replay is the same order");
    let order_id = order["id"].as_str().unwrap().to_owned();

    // Oversell refused: 1 left, 2 asked.
    let oversell = api.send(Method::POST, "/api/orders", Some(&customer), Some(order_body.clone())).await;
    let refused = expect_error(oversell, StatusCode::CONFLICT).await;
    assert!(refused["details"][&product_id].is_string(), "{refused}");

    // History.
    let history =
        expect_status(api.send(Method::GET, "/api/orders", Some(&customer), None).await, StatusCode::OK).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    let one = expect_status(
        api.send(Method::GET, &format!("/api/orders/{order_id}"), Some(&customer), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["status"], "pending");
    let items = expect_status(
        api.send(Method::GET, &format!("/api/orders/{order_id}/items"), Some(&customer), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(items["items"][0]["quantity"], 2, "{items}");

    // Cancel: the units come back.
    let cancel = api.cancel(&customer, &order_id).await;
    assert_eq!(expect_status(cancel, StatusCode::OK).await["status"], "cancelled");
    let product =
        expect_status(api.send(Method::GET, &format!("/api/products/{product_id}"), None, None).await, StatusCode::OK)
            .await;
    assert_eq!(product["stock"], 3, "{product}");

    // The cart functions: fill, read, refuse a stale If-Match, check out.
    let line = format!("/api/cart/items/{product_id}");
    let filled = api.send(Method::PUT, &line, Some(&customer), Some(json!({"quantity": 2}))).await;
    let filled = expect_status(filled, StatusCode::OK).await;
    assert_eq!((filled["itemCount"].as_u64(), filled["subtotal"].as_f64()), (Some(2), Some(49.0)), "{filled}");
    let read = expect_status(api.send(Method::GET, "/api/cart", Some(&customer), None).await, StatusCode::OK).await;
    assert_eq!(read, filled);
    let stale = api.client.delete(format!("{}{line}", api.base)).bearer_auth(&customer).header("if-match", "0");
    expect_error(stale.send().await.unwrap(), StatusCode::PRECONDITION_FAILED).await;
    let checkout = api.client.post(format!("{}/api/checkout", api.base)).bearer_auth(&customer);
    let placed = expect_status(
        checkout.header("idempotency-key", "journey-checkout-1").send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!((placed["source"].as_str(), placed["totalAmount"].as_f64()), (Some("cart"), Some(49.0)), "{placed}");
    let emptied = expect_status(api.send(Method::GET, "/api/cart", Some(&customer), None).await, StatusCode::OK).await;
    assert_eq!(emptied["items"], json!([]));
    let product =
        expect_status(api.send(Method::GET, &format!("/api/products/{product_id}"), None, None).await, StatusCode::OK)
            .await;
    assert_eq!(product["stock"], 1, "checkout reserved 2 of 3: {product}");
    let nothing = api.send(Method::POST, "/api/checkout", Some(&customer), None).await;
    expect_error(nothing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(api.send(Method::DELETE, "/api/cart", Some(&customer), None).await.status(), StatusCode::NO_CONTENT);

    // Error shapes from the functions.
    let invalid = api
        .send(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "not-an-email", "password": "x", "name": ""})),
        )
        .await;
    let invalid = expect_error(invalid, StatusCode::BAD_REQUEST).await;
    assert!(invalid["details"]["email"].is_string(), "{invalid}");
    expect_error(api.send(Method::GET, "/api/orders", None, None).await, StatusCode::UNAUTHORIZED).await;
    expect_error(api.send(Method::GET, "/api/users", Some(&customer), None).await, StatusCode::FORBIDDEN).await;
    expect_error(api.send(Method::GET, "/api/products/no-such-product", None, None).await, StatusCode::NOT_FOUND).await;
}

/// Rate-limit headers on every /api answer, with the limit the caller
/// passed through (`RATE_LIMIT_MAX`), and one count per client shared by
/// every function (kept in Redis): three functions in turn, each answer one
/// request fewer remaining.
#[tokio::test]
async fn rate_limits_are_passed_through_and_counted_across_functions() {
    let api = Api::from_env();
    let limit: u64 = std::env::var("SHOP_SAM_RATE_LIMIT_MAX").expect("SHOP_SAM_RATE_LIMIT_MAX").parse().unwrap();
    let mut remaining = Vec::new();
    for path in ["/api/products", "/api/categories", "/api/products?limit=1", "/api/orders"] {
        let response = api.send(Method::GET, path, None, None).await;
        let header = |name: &str| response.headers()[name].to_str().unwrap().parse::<u64>().unwrap();
        assert_eq!(header("x-ratelimit-limit"), limit, "{path}");
        assert!(header("x-ratelimit-reset") > 0, "{path}");
        remaining.push(header("x-ratelimit-remaining"));
    }
    assert!(remaining.windows(2).all(|pair| pair[1] < pair[0]), "one count across the functions: {remaining:?}");
}

/// Payments through the functions: checkout answers the PaymentIntent
/// (made by the `checkout` function at localstripe), the browser pays it,
/// localstripe's signed webhook reaches `payments-webhook` through SAM's
/// gateway and confirms the order; a cancel owes the refund, which
/// `payments-get` settles (no bus offline for `payments-refund`).
#[tokio::test]
async fn a_checkout_is_paid_through_stripes_webhook_and_refunded_on_cancel() {
    let api = Api::from_env();
    let stripe = std::env::var("SHOP_SAM_STRIPE_URL").expect("SHOP_SAM_STRIPE_URL: run local-stack/sam-local.sh start");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (admin_email, customer_email) = (format!("payadmin-{run}@example.com"), format!("payer-{run}@example.com"));
    api.register(&admin_email).await;
    grant_admin(&admin_email);
    let admin = api.login(&admin_email).await;
    api.register(&customer_email).await;
    let customer = api.login(&customer_email).await;
    let category = format!("Pay {}", &run[..8]);
    let created = api.send(Method::POST, "/api/categories", Some(&admin), Some(json!({"name": category}))).await;
    expect_status(created, StatusCode::CREATED).await;
    let product =
        json!({"name": "Paid Lamp", "description": "paid for", "price": 12.25, "category": category, "stock": 5});
    let product =
        expect_status(api.send(Method::POST, "/api/products", Some(&admin), Some(product)).await, StatusCode::CREATED)
            .await;
    let line = format!("/api/cart/items/{}", product["id"].as_str().unwrap());
    expect_status(api.send(Method::PUT, &line, Some(&customer), Some(json!({"quantity": 2}))).await, StatusCode::OK)
        .await;
    let placed =
        expect_status(api.send(Method::POST, "/api/checkout", Some(&customer), None).await, StatusCode::CREATED).await;
    let order_id = placed["id"].as_str().unwrap().to_owned();
    let intent = placed["payment"]["intentId"].as_str().expect("checkout answers the payment").to_owned();
    assert_eq!(placed["payment"]["amount"], 2450, "{placed}");

    // The browser's part (Stripe.js), straight at localstripe.
    let http = reqwest::Client::new();
    for path in [format!("/v1/payment_intents/{intent}"), format!("/v1/payment_intents/{intent}/confirm")] {
        let form: &[(&str, &str)] = if path.ends_with("confirm") { &[] } else { &[("payment_method", "pm_card_visa")] };
        let answer =
            http.post(format!("{stripe}{path}")).basic_auth("sk_test_sam_local", Some("")).form(form).send().await;
        assert!(answer.unwrap().status().is_success(), "{path}");
    }
    let mut order = Value::Null;
    for _ in 0..100 {
        let read = api.send(Method::GET, &format!("/api/orders/{order_id}"), Some(&customer), None).await;
        order = expect_status(read, StatusCode::OK).await;
        if order["paymentStatus"] == "paid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        (order["status"].as_str(), order["paymentStatus"].as_str()),
        (Some("confirmed"), Some("paid")),
        "{order}"
    );

    let cancel = api.cancel(&customer, &order_id).await;
    assert_eq!(expect_status(cancel, StatusCode::OK).await["paymentStatus"], "refund_pending");
    let payment = api.send(Method::GET, &format!("/api/orders/{order_id}/payment"), Some(&customer), None).await;
    let payment = expect_status(payment, StatusCode::OK).await;
    assert_eq!(
        (payment["orderStatus"].as_str(), payment["paymentStatus"].as_str()),
        (Some("cancelled"), Some("refunded"))
    );
    let refunds = http
        .get(format!("{stripe}/v1/refunds?payment_intent={intent}"))
        .basic_auth("sk_test_sam_local", Some(""))
        .send()
        .await
        .unwrap();
    let refunds: Value = refunds.json().await.unwrap();
    let total: u64 = refunds["data"].as_array().unwrap().iter().map(|r| r["amount"].as_u64().unwrap()).sum();
    assert_eq!(total, 2450, "{refunds}");
}

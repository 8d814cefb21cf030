//! Handler tests fed by the sample API Gateway events in `events/`, the same
//! files `cargo lambda invoke --data-file` uses.

use std::path::Path;
use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shop::cache::memory::MemoryCache;
use shop::domain::{Email, Role, User, UserId, UserName, UserStatus};
use shop::routes::{ROUTES, by_function};
use shop::store::embedded::EmbeddedStore;
use shop::{App, Config};
use time::OffsetDateTime;

/// The ids the sample events use.
const SAMPLE_PRODUCT_ID: &str = "0193a1c2-7d4e-7b10-9a3f-5c6d7e8f9a0b";
const SAMPLE_ORDER_ID: &str = "0193a1c3-1111-7222-8333-944455556666";

struct Harness {
    app: App,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        Self::with_admin(None)
    }

    /// `admin`: an email that registers as admin.
    fn with_admin(admin: Option<&str>) -> Self {
        let admin = admin.map(str::to_owned);
        Self::with_config(
            Config::from_lookup(|name| if name == "ADMIN_EMAILS" { admin.clone() } else { None }).unwrap(),
        )
    }

    /// A handler harness with the configuration `variables` give.
    fn with_variables(variables: &[(&str, &str)]) -> Self {
        let lookup = |name: &str| variables.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        Self::with_config(Config::from_lookup(lookup).unwrap())
    }

    fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let app = App::new(config, store, Arc::new(MemoryCache::new()), b"events-test-secret-events-test-secret");
        Harness { app, _dir: dir }
    }

    /// Sends `events/<function>.json`, with the bearer token swapped in
    /// when given.
    async fn send(&self, function: &str, token: Option<&str>) -> (u16, Value) {
        self.send_replacing(function, token, &[]).await
    }

    /// Like `send`, with the `{id}` path parameter swapped in when given.
    async fn send_for(&self, function: &str, token: Option<&str>, id: Option<&str>) -> (u16, Value) {
        let replacements: Vec<(&str, &str)> =
            id.map(|id| vec![(SAMPLE_PRODUCT_ID, id), (SAMPLE_ORDER_ID, id)]).unwrap_or_default();
        self.send_replacing(function, token, &replacements).await
    }

    /// Sends the event with its placeholder token removed, and `token` in
    /// its place when given.
    async fn send_without_sample_token(&self, function: &str, token: Option<&str>) -> (u16, Value) {
        self.send_event(function, token, &[], true).await
    }

    /// Sends the event with each sample value replaced throughout.
    async fn send_replacing(&self, function: &str, token: Option<&str>, replacements: &[(&str, &str)]) -> (u16, Value) {
        self.send_event(function, token, replacements, false).await
    }

    async fn send_event(
        &self,
        function: &str,
        token: Option<&str>,
        replacements: &[(&str, &str)],
        drop_sample_token: bool,
    ) -> (u16, Value) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(format!("{function}.json"));
        let mut text = std::fs::read_to_string(path).unwrap();
        for (sample, value) in replacements {
            text = text.replace(sample, value);
        }
        let mut event: Value = serde_json::from_str(&text).unwrap();
        if drop_sample_token && let Some(headers) = event["headers"].as_object_mut() {
            headers.remove("authorization");
        }
        if let Some(token) = token {
            event["headers"]["authorization"] = Value::String(format!("Bearer {token}"));
        }
        let request: Request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = self.app.handle(by_function(function).unwrap(), request).await;
        (response.status().as_u16(), body_json(&response))
    }
}

/// The JSON body; `null` for an empty one or another media type (the
/// API reference's page and document).
fn body_json(response: &Response<Body>) -> Value {
    let json = response.headers().get("content-type").is_some_and(|value| value == "application/json");
    match response.body() {
        body if json => serde_json::from_slice(body.as_ref()).unwrap(),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn the_sample_events_walk_through_the_whole_auth_flow() {
    let harness = Harness::new();
    assert_eq!(harness.send("health", None).await.0, 200);

    let (status, registered) = harness.send("auth-register", None).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["user"]["email"], "sample.user@example.com");
    assert!(registered["user"].get("passwordHash").is_none());

    let (status, logged_in) = harness.send("auth-login", None).await;
    assert_eq!(status, 200, "{logged_in}");
    let token = logged_in["token"].as_str().unwrap();

    let (status, profile) = harness.send("auth-profile-get", Some(token)).await;
    assert_eq!((status, &profile["user"]["id"]), (200, &registered["user"]["id"]));

    let (status, updated) = harness.send("auth-profile-update", Some(token)).await;
    assert_eq!((status, updated["user"]["name"].as_str()), (200, Some("Sample User Renamed")));

    assert_eq!(harness.send("auth-logout", Some(token)).await.0, 204);
    assert_eq!(harness.send("auth-profile-get", Some(token)).await.0, 401);
}

#[tokio::test]
async fn the_catalog_sample_events_walk_through_create_read_update_delete() {
    let harness = Harness::with_admin(Some("sample.user@example.com"));
    let (_, registered) = harness.send("auth-register", None).await;
    let token = registered["token"].as_str().unwrap();
    assert_eq!(registered["user"]["role"], "admin");

    let (status, category) = harness.send("categories-create", Some(token)).await;
    assert_eq!((status, category["name"].as_str()), (201, Some("Electronics")), "{category}");
    let (status, categories) = harness.send("categories-list", None).await;
    assert_eq!((status, categories["items"].as_array().map(Vec::len)), (200, Some(1)));

    let (status, created) = harness.send("products-create", Some(token)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["price"], serde_json::json!(1299.99));
    let id = created["id"].as_str().unwrap();
    let (status, fetched) = harness.send_for("products-get", None, Some(id)).await;
    assert_eq!((status, &fetched), (200, &created));

    let (status, updated) = harness.send_for("products-update", Some(token), Some(id)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["price"].clone(), updated["stock"].clone()),
        (serde_json::json!(1199.99), serde_json::json!(35))
    );

    let (status, listed) = harness.send("products-list", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"], serde_json::json!([]), "the sample filters cap the price at 500");

    assert_eq!(harness.send_for("products-delete", Some(token), Some(id)).await.0, 204);
    assert_eq!(harness.send_for("products-get", None, Some(id)).await.0, 404);
}

#[tokio::test]
async fn the_order_sample_events_place_read_and_cancel_an_order() {
    let harness = Harness::with_admin(Some("sample.user@example.com"));
    let (_, registered) = harness.send("auth-register", None).await;
    let token = registered["token"].as_str().unwrap();
    assert_eq!(harness.send("categories-create", Some(token)).await.0, 201);
    let (_, product) = harness.send("products-create", Some(token)).await;
    let product_id = product["id"].as_str().unwrap();
    let with_product = [(SAMPLE_PRODUCT_ID, product_id)];

    let (status, order) = harness.send_replacing("orders-create", Some(token), &with_product).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["totalAmount"], serde_json::json!(2599.98));
    assert_eq!(order["status"], "pending");
    let (status, replayed) = harness.send_replacing("orders-create", Some(token), &with_product).await;
    assert_eq!((status, &replayed["id"]), (201, &order["id"]), "the idempotency key replays");
    let (_, product_now) = harness.send_for("products-get", None, Some(product_id)).await;
    assert_eq!(product_now["stock"], 23, "reserved once");

    let order_id = order["id"].as_str().unwrap();
    let (status, fetched) = harness.send_for("orders-get", Some(token), Some(order_id)).await;
    assert_eq!((status, &fetched), (200, &order));
    let (status, lines) = harness.send_for("orders-items", Some(token), Some(order_id)).await;
    assert_eq!((status, &lines["items"]), (200, &order["items"]));
    let (status, listed) = harness.send("orders-list", Some(token)).await;
    assert_eq!((status, &listed["items"][0]["id"]), (200, &order["id"]));

    let (status, cancelled) = harness.send_for("orders-update-status", Some(token), Some(order_id)).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")));
    let (_, product_after) = harness.send_for("products-get", None, Some(product_id)).await;
    assert_eq!(product_after["stock"], 25, "the stock came back");
}

#[tokio::test]
async fn the_cart_sample_events_fill_read_edit_and_check_out_a_cart() {
    let harness = Harness::with_admin(Some("sample.user@example.com"));
    let (_, registered) = harness.send("auth-register", None).await;
    let token = registered["token"].as_str().unwrap();
    assert_eq!(harness.send("categories-create", Some(token)).await.0, 201);
    let (_, product) = harness.send("products-create", Some(token)).await;
    let product_id = product["id"].as_str().unwrap();
    let with_product = [(SAMPLE_PRODUCT_ID, product_id)];

    let (status, empty) = harness.send("cart-get", Some(token)).await;
    assert_eq!((status, &empty["items"], &empty["version"]), (200, &serde_json::json!([]), &serde_json::json!(0)));
    let (status, cart) = harness.send_replacing("cart-items-put", Some(token), &with_product).await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!((cart["itemCount"].as_u64(), cart["subtotal"].as_f64()), (Some(2), Some(2599.98)));
    let (status, read) = harness.send("cart-get", Some(token)).await;
    assert_eq!((status, &read), (200, &cart));

    let (status, order) = harness.send("checkout", Some(token)).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!((order["source"].as_str(), order["totalAmount"].as_f64()), (Some("cart"), Some(2599.98)));
    let (status, replayed) = harness.send("checkout", Some(token)).await;
    assert_eq!((status, &replayed["id"]), (201, &order["id"]), "the sample's idempotency key replays");
    let (_, product_now) = harness.send_for("products-get", None, Some(product_id)).await;
    assert_eq!(product_now["stock"], 23, "reserved once");

    // The delete sample names version 1 in If-Match: the cart is at 1 again after one put.
    harness.send_replacing("cart-items-put", Some(token), &with_product).await;
    let (status, emptied) = harness.send_replacing("cart-items-delete", Some(token), &with_product).await;
    assert_eq!((status, emptied["items"].as_array().map(Vec::len)), (200, Some(0)), "{emptied}");
    let (status, stale) = harness.send_replacing("cart-items-delete", Some(token), &with_product).await;
    assert_eq!(status, 412, "the cart moved past version 1: {stale}");
    assert_eq!(harness.send("cart-clear", Some(token)).await.0, 204);
}

#[tokio::test]
async fn the_sample_events_placeholder_token_is_refused() {
    let harness = Harness::new();
    for function in [
        "auth-profile-get",
        "auth-profile-update",
        "auth-logout",
        "categories-create",
        "products-create",
        "products-update",
        "products-delete",
        "orders-create",
        "orders-list",
        "orders-get",
        "orders-items",
        "orders-update-status",
        "cart-get",
        "cart-items-put",
        "cart-items-delete",
        "cart-clear",
        "checkout",
    ] {
        let (status, body) = harness.send(function, None).await;
        assert_eq!(status, 401, "{function}: {body}");
        assert_eq!(body["status"], 401);
    }
}

#[tokio::test]
async fn registering_the_sample_user_twice_is_a_conflict() {
    let harness = Harness::new();
    assert_eq!(harness.send("auth-register", None).await.0, 201);
    let (status, body) = harness.send("auth-register", None).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn every_sample_event_gets_rate_limit_and_security_headers_where_due() {
    let harness = Harness::new();
    for route in ROUTES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(format!("{}.json", route.function));
        let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let response = harness.app.handle(route, request).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{}", route.function);
        assert_eq!(headers["x-request-id"], format!("sample-{}", route.function));
        assert_eq!(headers.contains_key("x-ratelimit-limit"), route.path.starts_with("/api/"), "{}", route.function);
    }
}

/// A user put straight into the store: the access walk needs tokens, not
/// passwords.
async fn stored_user(app: &App, email: &str, role: Role) -> User {
    let now = OffsetDateTime::now_utc();
    let user = User {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: UserName::parse("Access Walker").unwrap(),
        role,
        password_hash: "not-a-hash: this user never signs in with a password".into(),
        status: UserStatus::Active,
        session_version: 0,
        created_at: now,
        updated_at: now,
    };
    app.store.create_user(&user).await.unwrap();
    user
}

/// Walks every route of the table with no token, a customer's token and an
/// admin's, and checks the door answers as the route's access declares:
/// 401 without a token on every protected route, 403 for a customer on an
/// admin route, and neither a refusal nor a failure where the access admits
/// the caller (a handler that needs a caller behind a `public` route fails
/// closed with a 500, which this catches). A
/// new route is walked as soon as it is in the table (it must have a sample
/// event). Each request carries a fresh token, since the logout sample
/// revokes the one it is sent with.
#[tokio::test]
async fn every_route_admits_exactly_the_callers_its_access_declares() {
    let harness = Harness::new();
    // The login and register samples then meet an existing account (200 and
    // 409), not a missing one (401), so "admitted" can be told from "refused".
    assert_eq!(harness.send("auth-register", None).await.0, 201);
    let customer = stored_user(&harness.app, "walk.customer@example.com", Role::Customer).await;
    let admin = stored_user(&harness.app, "walk.admin@example.com", Role::Admin).await;
    for route in ROUTES {
        let name = route.function;
        for (caller, user) in [("anonymous", None), ("customer", Some(&customer)), ("admin", Some(&admin))] {
            let token = user.map(|user| harness.app.tokens.issue(user).unwrap().token);
            let (status, body) = harness.send_without_sample_token(name, token.as_deref()).await;
            let admitted = match user {
                None => !route.access.needs_token(),
                Some(user) => route.access.admits(user.role),
            };
            if admitted {
                let refused_or_failed = [401, 403].contains(&status) || status >= 500;
                assert!(
                    !refused_or_failed,
                    "{name} ({}) did not serve a {caller}: {status} {body}",
                    route.access.as_str()
                );
            } else {
                let expected = if user.is_none() { 401 } else { 403 };
                assert_eq!(status, expected, "{name} ({}) for a {caller}: {body}", route.access.as_str());
                assert_eq!(body["status"], expected, "{name}: the JSON error body");
            }
        }
    }
}

#[tokio::test]
async fn in_lambda_a_registration_with_an_admin_email_is_a_customer() {
    let harness = Harness::with_variables(&[
        ("ADMIN_EMAILS", "sample.user@example.com"),
        ("AWS_LAMBDA_FUNCTION_NAME", "auth-register"),
        ("JWT_SECRET", "a-deployed-secret-of-at-least-32-characters"),
    ]);
    let (status, registered) = harness.send("auth-register", None).await;
    assert_eq!((status, registered["user"]["role"].as_str()), (201, Some("customer")), "{registered}");
}

/// The login sample from `ip`, with `password` (and `email`) in place of
/// the sample's.
async fn login_from(harness: &Harness, ip: &str, email: &str, password: &str) -> (u16, Value) {
    let replacements = [("203.0.113.7", ip), ("sample.user@example.com", email), ("correct horse battery", password)];
    harness.send_replacing("auth-login", None, &replacements).await
}

#[tokio::test]
async fn failed_logins_for_one_email_are_throttled_whatever_the_source_ip() {
    let harness = Harness::with_variables(&[("LOGIN_FAILURES_MAX", "3")]);
    assert_eq!(harness.send("auth-register", None).await.0, 201);
    for (n, ip) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].iter().enumerate() {
        let (status, body) = login_from(&harness, ip, "sample.user@example.com", "wrong password").await;
        assert_eq!(status, 401, "failure {n}: {body}");
    }
    // From a fourth address, even with the right password: blocked.
    let (status, body) = login_from(&harness, "198.51.100.4", "sample.user@example.com", "correct horse battery").await;
    assert_eq!((status, body["status"].as_i64()), (429, Some(429)), "{body}");
    // Another account is not touched.
    let (status, _) = login_from(&harness, "198.51.100.4", "other.user@example.com", "wrong password").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_unknown_email_is_throttled_exactly_like_a_known_one() {
    let harness = Harness::with_variables(&[("LOGIN_FAILURES_MAX", "2")]);
    let mut answers = Vec::new();
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let (status, body) = login_from(&harness, ip, "nobody@example.com", "whatever password").await;
        answers.push((status, body["error"].clone()));
    }
    assert_eq!(answers[0], answers[1], "the same refusal each time");
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[2].0, 429);
}

#[tokio::test]
async fn a_throttled_login_says_when_to_retry() {
    let harness = Harness::with_variables(&[("LOGIN_FAILURES_MAX", "1")]);
    login_from(&harness, "198.51.100.1", "nobody@example.com", "whatever password").await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/auth-login.json");
    let text = std::fs::read_to_string(path).unwrap().replace("sample.user@example.com", "nobody@example.com");
    let request: Request = lambda_http::request::from_str(&text).unwrap();
    let response = harness.app.handle(by_function("auth-login").unwrap(), request).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn the_api_reference_page_and_its_document_are_served_from_the_sample_events() {
    let harness = Harness::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/docs-page.json");
    let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let page = harness.app.handle(by_function("docs-page").unwrap(), request).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "br", "the sample accepts gzip and br");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'sha256-"));
    let mut html = Vec::new();
    brotli::BrotliDecompress(&mut page.body().as_ref(), &mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("SwaggerUIBundle({ url: \"openapi.yaml\""), "the page renders the document");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/openapi-document.json");
    let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let document = harness.app.handle(by_function("openapi-document").unwrap(), request).await;
    assert_eq!(document.status(), 200);
    assert_eq!(document.headers()["content-type"], "application/yaml");
    assert_eq!(document.headers()["content-encoding"], "br", "30 KB of YAML is worth compressing");
    let mut text = Vec::new();
    brotli::BrotliDecompress(&mut document.body().as_ref(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("openapi: 3.0.3"), "{}", &text[..40.min(text.len())]);
}

/// What each request waited for the store, by status.
#[derive(Default)]
struct StoreWaits(std::sync::Mutex<Vec<(u16, std::time::Duration)>>);

impl shop::metrics::RequestObserver for StoreWaits {
    fn observe(
        &self,
        _: &'static str,
        _: &str,
        status: u16,
        _: std::time::Duration,
        recorded: &shop::metrics::Recorded,
    ) {
        self.0.lock().unwrap().push((status, recorded.1.store));
    }
}

#[tokio::test]
async fn a_read_refused_by_the_rate_limit_never_reaches_the_store() {
    let config = Config::from_lookup(|name| (name == "RATE_LIMIT_MAX").then(|| "1".to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let waits = Arc::new(StoreWaits::default());
    let app = App::new(config, store, Arc::new(MemoryCache::new()), b"events-test-secret-events-test-secret")
        .with_observer(Arc::clone(&waits) as Arc<dyn shop::metrics::RequestObserver>);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/products-get.json");
    for _ in 0..2 {
        let request = lambda_http::request::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        app.handle(by_function("products-get").unwrap(), request).await;
    }
    let seen = waits.0.lock().unwrap().clone();
    assert_eq!(seen[0].0, 404, "the sample's product does not exist");
    assert!(seen[0].1 > std::time::Duration::ZERO, "the admitted read asked the store");
    assert_eq!(seen[1], (429, std::time::Duration::ZERO), "the refused one never did");
}

/// The Stripe webhook sample comes base64-encoded, as API Gateway passes a
/// body it does not take for text: its signature is checked on the decoded
/// bytes. The sample's own signature is a placeholder (400); signed for its
/// body, it is accepted (its order is not in this store: 200, ignored). The
/// payment routes refuse clearly while payments are off.
#[tokio::test]
async fn the_payment_samples_check_the_webhook_signature_on_the_decoded_body() {
    use base64::Engine;
    let secret = "whsec_events_test";
    let harness = Harness::with_variables(&[
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_SECRET_KEY", "sk_test_events"),
        ("STRIPE_WEBHOOK_SECRET", secret),
        // Nothing listens there: no Stripe call may be needed below.
        ("STRIPE_API_BASE", "http://127.0.0.1:9"),
    ]);
    let (status, refused) = harness.send("payments-webhook", None).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("signature"), "{refused}");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/payments-webhook.json");
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(sample["isBase64Encoded"], true);
    let body = base64::engine::general_purpose::STANDARD.decode(sample["body"].as_str().unwrap()).unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let signature = shop::payments::signature::sign(&body, secret, now);
    let placeholder = sample["headers"]["stripe-signature"].as_str().unwrap().to_owned();
    let (status, received) =
        harness.send_replacing("payments-webhook", None, &[(placeholder.as_str(), signature.as_str())]).await;
    assert_eq!((status, received["note"].as_str()), (200, Some("no such order")), "{received}");

    let off = Harness::new();
    let (status, body) = off.send("payments-webhook", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("payments are off"), "{body}");
}

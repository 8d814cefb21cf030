//! `TestApp`: one running `shop-local` and one method per route.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[path = "../common/expect.rs"]
mod expect;
// The fault suite includes this file too and uses only some of them.
#[allow(unused_imports)]
pub use expect::{expect_error, expect_status};

/// Variables of the server's own configuration, cleared so that the
/// developer's shell cannot leak into a test.
const CONFIG_VARIABLES: &[&str] = &[
    "PORT",
    "STORE",
    "DATA_DIR",
    "TABLE_NAME",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "CACHE_URL",
    "CACHE_KEY_PREFIX",
    "JWT_SECRET",
    "JWT_TTL_SECONDS",
    "RATE_LIMIT_WINDOW_SECONDS",
    "RATE_LIMIT_MAX",
    "AUTH_RATE_LIMIT_MAX",
    "ADMIN_EMAILS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "MAX_BODY_BYTES",
    "CORS_ALLOW_ORIGIN",
    "AWS_LAMBDA_FUNCTION_NAME",
    "METRICS",
    "METRICS_NAMESPACE",
    "REQUEST_TIMEOUT_MS",
    "CACHE_TIMEOUT_MS",
    "BREAKER_FAILURES",
    "BREAKER_COOLDOWN_MS",
    "LOGIN_FAILURES_MAX",
    "LOGIN_FAILURES_WINDOW_SECONDS",
    "LOW_STOCK_THRESHOLD",
    "ORDER_RESERVATION_SECONDS",
    "EVENTS_POLL_MS",
    "EVENT_FEED",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS",
    "WEBHOOK_ALLOW_INSECURE_URLS",
    "DYNAMODB_CONSUMED_CAPACITY",
    "PAYMENT_PROVIDER",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_SECRETS_ARN",
    "STRIPE_API_BASE",
    "SHOP_CURRENCY",
];

pub const ADMIN_EMAIL: &str = "boss@shop.test";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    child: Child,
    /// Every line the server wrote on stdout after it started listening.
    output: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
    /// Kept alive for the embedded store and the local JWT secret.
    data_dir: tempfile::TempDir,
}

fn required(variable: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("SHOP_TEST_BACKEND=dynamodb needs {variable}; run local-stack/test-all.sh"))
}

/// The environment of a server on the backend under test.
fn backend_env() -> Vec<(String, String)> {
    match std::env::var("SHOP_TEST_BACKEND").as_deref() {
        Ok("dynamodb") => vec![
            ("STORE".into(), "dynamodb".into()),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), required("SHOP_TEST_DYNAMODB_URL")),
            ("TABLE_NAME".into(), format!("shop-api-test-{}", uuid::Uuid::new_v4().simple())),
            ("CACHE_URL".into(), required("SHOP_TEST_REDIS_URL")),
        ],
        Ok("embedded") | Err(_) => vec![],
        Ok(other) => panic!("SHOP_TEST_BACKEND=`{other}`: expected `embedded` or `dynamodb`"),
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts a server with `overrides` on top of the test defaults.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("PORT".into(), "0".into()),
            ("LOG_FORMAT".into(), "json".into()),
            ("LOG_LEVEL".into(), "info".into()),
            ("ADMIN_EMAILS".into(), ADMIN_EMAIL.into()),
            // Servers of parallel tests share one Redis: keep their keys apart.
            ("CACHE_KEY_PREFIX".into(), format!("test-{}", uuid::Uuid::new_v4().simple())),
        ];
        env.extend(backend_env());
        for (name, value) in overrides {
            env.retain(|(n, _)| n != name);
            env.push((name.to_string(), value.to_string()));
        }
        let (child, base, output) = start(&env, data_dir.path().to_path_buf()).await;
        TestApp { base, client: reqwest::Client::new(), child, output, env, data_dir }
    }

    /// Stops the server with SIGTERM, checks it exits cleanly, and starts it
    /// again on the same data (same folder, same table).
    pub async fn restart(mut self) -> Self {
        let exit = self.terminate().await;
        assert!(exit.success(), "shop-local exited with {exit} on SIGTERM");
        let (child, base, output) = start(&self.env, self.data_dir.path().to_path_buf()).await;
        self.child = child;
        self.base = base;
        self.output = output;
        self
    }

    /// Kills the server with SIGKILL (no shutdown at all, as a crash or an
    /// out-of-memory kill would) and starts it again on the same port and
    /// data, so clients keep their base URL. (For the fault tests.)
    #[allow(dead_code)]
    pub async fn crash_and_restart(&mut self) {
        let pid = self.child.id().expect("server is running");
        let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().await.unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.expect("server dies").unwrap();
        let port = self.base.rsplit(':').next().unwrap().to_owned();
        let mut env = self.env.clone();
        env.retain(|(name, _)| name != "PORT");
        env.push(("PORT".into(), port));
        let (child, base, output) = start(&env, self.data_dir.path().to_path_buf()).await;
        assert_eq!(base, self.base, "restarted on the same port");
        self.child = child;
        self.output = output;
    }

    /// Sets `name` for the next (re)start.
    #[allow(dead_code)]
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// The value of `name` in this server's environment.
    #[allow(dead_code)]
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `GET /api/events` with a query string.
    #[allow(dead_code)]
    pub async fn events(&self, token: &str, query: &str) -> Response {
        self.request(Method::GET, &format!("/api/events?{query}")).bearer_auth(token).send().await.unwrap()
    }

    /// Every logged event, newest first, paging through `GET /api/events`.
    #[allow(dead_code)]
    pub async fn all_events(&self, token: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut query = "limit=7".to_owned();
        loop {
            let page = expect_status(self.events(token, &query).await, StatusCode::OK).await;
            events.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(cursor) => query = format!("limit=7&cursor={cursor}"),
                None => return events,
            }
        }
    }

    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("server is running");
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.expect("server stops").unwrap()
    }

    /// The CloudWatch EMF documents (lines with `_aws`) written so far.
    pub fn metric_documents(&self) -> Vec<Value> {
        let lines = self.output.lock().unwrap();
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|document| document.get("_aws").is_some())
            .collect()
    }

    /// Waits until every event the change feed has yielded reached every
    /// consumer (the log and the cache invalidation): what a test that
    /// counts cache hits, or reads the event log, waits for. Settled is
    /// "published = delivered, per consumer" once the feed has been read
    /// twice since the call began (so every change written before it was
    /// seen).
    pub async fn settled(&self) {
        let mut reads_at_start = None;
        let mut text = String::new();
        for _ in 0..300 {
            text = self.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
            let value = |prefix: &str| -> Option<u64> {
                text.lines().find_map(|line| line.strip_prefix(prefix)?.trim().parse::<f64>().ok()).map(|v| v as u64)
            };
            let published = value("shop_events_published_total ").unwrap_or(0);
            let reads = value("shop_event_feed_reads_total ").unwrap_or(0);
            let start = *reads_at_start.get_or_insert(reads);
            let delivered: Vec<Option<u64>> = ["events-record", "events-invalidate-cache"]
                .iter()
                .map(|consumer| value(&format!("shop_event_deliveries_total{{consumer=\"{consumer}\"}} ")))
                .collect();
            let all_in = delivered.iter().all(|d| d.unwrap_or(0) == published);
            if all_in && reads >= start + 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let feed: Vec<&str> = text.lines().filter(|l| l.starts_with("shop_event")).collect();
        let log = self
            .output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.contains("\"INFO\""))
            .take(20)
            .cloned()
            .collect::<Vec<_>>();
        panic!("the change feed did not settle within 15 s: {feed:#?}\n{log:#?}");
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{}", self.base, path))
    }

    pub async fn health(&self) -> Response {
        self.request(Method::GET, "/health").send().await.unwrap()
    }

    /// Reads the catalog's `path` (200 expected) until a read is answered
    /// from the cache (the server's hit count grows), and returns that
    /// read's body; `None` after 50 reads. A miss fills the cache beside
    /// its answer, so the read right after it may still miss.
    pub async fn read_until_cached(&self, path: &str) -> Option<Value> {
        let hits = |health: Value| health["cacheStats"]["hits"].as_u64().unwrap();
        let mut before = hits(expect_status(self.health().await, StatusCode::OK).await);
        for _ in 0..50 {
            let body = expect_status(self.request(Method::GET, path).send().await.unwrap(), StatusCode::OK).await;
            let after = hits(expect_status(self.health().await, StatusCode::OK).await);
            if after > before {
                return Some(body);
            }
            before = after;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        let body = json!({ "email": email, "password": password, "name": name });
        self.request(Method::POST, "/api/auth/register").json(&body).send().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        let body = json!({ "email": email, "password": password });
        self.request(Method::POST, "/api/auth/login").json(&body).send().await.unwrap()
    }

    /// Logs in (200 expected) and returns the new token.
    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let body = expect_status(self.login(email, password).await, StatusCode::OK).await;
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn profile(&self, token: &str) -> Response {
        self.request(Method::GET, "/api/auth/profile").bearer_auth(token).send().await.unwrap()
    }

    pub async fn update_profile(&self, token: &str, body: Value) -> Response {
        self.request(Method::PUT, "/api/auth/profile").bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn logout(&self, token: &str) -> Response {
        self.request(Method::POST, "/api/auth/logout").bearer_auth(token).send().await.unwrap()
    }

    pub async fn create_category(&self, token: &str, name: &str) -> Response {
        let body = json!({ "name": name, "description": format!("All {name}") });
        self.request(Method::POST, "/api/categories").bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn categories(&self) -> Response {
        self.request(Method::GET, "/api/categories").send().await.unwrap()
    }

    pub async fn create_product(&self, token: &str, body: Value) -> Response {
        self.request(Method::POST, "/api/products").bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn get_product(&self, id: &str) -> Response {
        self.request(Method::GET, &format!("/api/products/{id}")).send().await.unwrap()
    }

    pub async fn update_product(&self, token: &str, id: &str, body: Value) -> Response {
        let path = format!("/api/products/{id}");
        self.request(Method::PUT, &path).bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn delete_product(&self, token: &str, id: &str) -> Response {
        self.request(Method::DELETE, &format!("/api/products/{id}")).bearer_auth(token).send().await.unwrap()
    }

    /// `GET /api/products?<query>`.
    pub async fn list_products(&self, query: &str) -> Response {
        self.request(Method::GET, &format!("/api/products?{query}")).send().await.unwrap()
    }

    /// Creates a product as `token` (an admin) and returns it.
    pub async fn product(&self, token: &str, name: &str, category: &str, price: f64, stock: u64) -> Value {
        let body = json!({"name": name, "description": format!("The {name}."), "price": price, "category": category, "stock": stock});
        expect_status(self.create_product(token, body).await, StatusCode::CREATED).await
    }

    pub async fn place_order(&self, token: &str, body: Value) -> Response {
        self.request(Method::POST, "/api/orders").bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn place_order_with_key(&self, token: &str, key: &str, body: Value) -> Response {
        let request = self.request(Method::POST, "/api/orders").bearer_auth(token).header("idempotency-key", key);
        request.json(&body).send().await.unwrap()
    }

    pub async fn orders(&self, token: &str, query: &str) -> Response {
        self.request(Method::GET, &format!("/api/orders?{query}")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn order(&self, token: &str, id: &str) -> Response {
        self.request(Method::GET, &format!("/api/orders/{id}")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn order_items(&self, token: &str, id: &str) -> Response {
        self.request(Method::GET, &format!("/api/orders/{id}/items")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn set_order_status(&self, token: &str, id: &str, status: &str) -> Response {
        let path = format!("/api/orders/{id}/status");
        self.request(Method::PUT, &path).bearer_auth(token).json(&json!({ "status": status })).send().await.unwrap()
    }

    pub async fn cart(&self, token: &str) -> Response {
        self.request(Method::GET, "/api/cart").bearer_auth(token).send().await.unwrap()
    }

    /// `PUT /api/cart/items/{product}` with `{quantity}`, and `If-Match` when given.
    pub async fn set_cart_line(&self, token: &str, product: &str, quantity: u64, if_match: Option<u64>) -> Response {
        let mut request = self.request(Method::PUT, &format!("/api/cart/items/{product}")).bearer_auth(token);
        if let Some(version) = if_match {
            request = request.header("if-match", format!("\"{version}\""));
        }
        request.json(&json!({ "quantity": quantity })).send().await.unwrap()
    }

    pub async fn remove_cart_line(&self, token: &str, product: &str) -> Response {
        let path = format!("/api/cart/items/{product}");
        self.request(Method::DELETE, &path).bearer_auth(token).send().await.unwrap()
    }

    pub async fn clear_cart(&self, token: &str, if_match: Option<u64>) -> Response {
        let mut request = self.request(Method::DELETE, "/api/cart").bearer_auth(token);
        if let Some(version) = if_match {
            request = request.header("if-match", version.to_string());
        }
        request.send().await.unwrap()
    }

    /// `POST /api/checkout`, with an `Idempotency-Key` when given.
    pub async fn checkout(&self, token: &str, key: Option<&str>) -> Response {
        let mut request = self.request(Method::POST, "/api/checkout").bearer_auth(token);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    /// `POST /api/orders/{id}/payment`, with `{paymentMethod}` when given.
    #[allow(dead_code)]
    pub async fn pay(&self, token: &str, order: &str, payment_method: Option<&str>) -> Response {
        let request = self.request(Method::POST, &format!("/api/orders/{order}/payment")).bearer_auth(token);
        let request = match payment_method {
            Some(method) => request.json(&json!({ "paymentMethod": method })),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// `GET /api/orders/{id}/payment`.
    #[allow(dead_code)]
    pub async fn payment(&self, token: &str, order: &str) -> Response {
        self.request(Method::GET, &format!("/api/orders/{order}/payment")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn users(&self, token: &str, query: &str) -> Response {
        self.request(Method::GET, &format!("/api/users?{query}")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn user(&self, token: &str, id: &str) -> Response {
        self.request(Method::GET, &format!("/api/users/{id}")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn set_user_role(&self, token: &str, id: &str, role: &str) -> Response {
        let path = format!("/api/users/{id}/role");
        self.request(Method::PUT, &path).bearer_auth(token).json(&json!({ "role": role })).send().await.unwrap()
    }

    pub async fn set_user_status(&self, token: &str, id: &str, status: &str) -> Response {
        let path = format!("/api/users/{id}/status");
        self.request(Method::PUT, &path).bearer_auth(token).json(&json!({ "status": status })).send().await.unwrap()
    }

    /// Runs `shop-local ARGS` (`admin ...`, `seed`) on this server's
    /// configuration and data. The embedded store is one process's file:
    /// for it the server is stopped while the command runs and started
    /// again after.
    pub async fn command(&mut self, args: &[&str]) -> std::process::Output {
        let embedded = !self.env.iter().any(|(name, value)| name == "STORE" && value == "dynamodb");
        if embedded {
            let exit = self.terminate().await;
            assert!(exit.success(), "shop-local exited with {exit} on SIGTERM");
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_shop-local"));
        for variable in CONFIG_VARIABLES {
            command.env_remove(variable);
        }
        command.envs(self.env.iter().cloned()).env("DATA_DIR", self.data_dir.path()).env("LOG_LEVEL", "warn");
        let output = command.args(args).output().await.unwrap();
        if embedded {
            let (child, base, lines) = start(&self.env, self.data_dir.path().to_path_buf()).await;
            (self.child, self.base, self.output) = (child, base, lines);
        }
        output
    }

    /// Registers a customer with a unique email; returns (token, user).
    pub async fn signed_up_customer(&self) -> (String, Value) {
        let email = format!("customer-{}@example.com", uuid::Uuid::new_v4().simple());
        self.sign_up(&email).await
    }

    pub async fn signed_up_admin(&self) -> (String, Value) {
        self.sign_up(ADMIN_EMAIL).await
    }

    async fn sign_up(&self, email: &str) -> (String, Value) {
        let response = self.register(email, PASSWORD, "Test User").await;
        let body = expect_status(response, StatusCode::CREATED).await;
        (body["token"].as_str().unwrap().to_owned(), body["user"].clone())
    }
}

/// Starts `shop-local` and waits for its "listening" log line; the lines
/// after it are collected in the returned buffer.
async fn start(env: &[(String, String)], data_dir: PathBuf) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop-local"));
    for variable in CONFIG_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().cloned()).env("DATA_DIR", data_dir);
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(log) = serde_json::from_str::<Value>(&line) else { continue };
            if let Some(addr) = log["addr"].as_str() {
                return addr.to_owned();
            }
        }
        panic!("shop-local exited before listening");
    })
    .await
    .expect("shop-local starts within 30 s");
    // Keep draining the log so the server never blocks on a full pipe.
    let output = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&output);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, format!("http://{address}"), output)
}

/// An app with an admin, the category Kitchen and products (name, price, stock).
pub async fn shop_with(products: &[(&str, f64, u64)]) -> (TestApp, String, Vec<String>) {
    shop_with_env(&[], products).await
}

/// [`shop_with`], on a server started with `overrides`.
pub async fn shop_with_env(
    overrides: &[(&str, &str)],
    products: &[(&str, f64, u64)],
) -> (TestApp, String, Vec<String>) {
    let app = TestApp::spawn_with(overrides).await;
    let (admin, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin, "Kitchen").await, StatusCode::CREATED).await;
    let mut ids = Vec::new();
    for (name, price, stock) in products {
        let product = app.product(&admin, name, "Kitchen", *price, *stock).await;
        ids.push(product["id"].as_str().unwrap().to_owned());
    }
    (app, admin, ids)
}

/// A product's stock as the API shows it.
pub async fn stock(app: &TestApp, id: &str) -> u64 {
    expect_status(app.get_product(id).await, StatusCode::OK).await["stock"].as_u64().unwrap()
}

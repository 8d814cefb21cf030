//! The load a fault scenario runs under: buyers placing orders with an
//! `Idempotency-Key` and retrying it as a careful client does, and readers
//! reading a product and their orders. Every answer is logged with its
//! latency; every acknowledged order is kept for the checks afterwards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long a buyer keeps retrying one key before giving it up (the
/// workload's end included).
const KEY_RETRY_WINDOW: Duration = Duration::from_secs(10);
/// Pause between retries and between reads.
const PAUSE: Duration = Duration::from_millis(150);
/// The client's own limit: far past what the server may take, so a
/// request that hangs is seen as slow, not cut short.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// One answer (or transport failure) the workload got.
#[derive(Clone, Debug)]
pub struct Answer {
    pub what: &'static str,
    /// `None`: no HTTP answer at all (connection refused or reset).
    pub status: Option<u16>,
    pub json: bool,
    pub retry_after: bool,
    pub sent_at: Instant,
    pub latency: Duration,
}

/// An order the server acknowledged with 201.
#[derive(Clone, Debug)]
pub struct Acknowledged {
    pub key: String,
    pub order_id: String,
    pub quantity: u64,
}

#[derive(Default)]
pub struct Outcome {
    pub answers: Vec<Answer>,
    pub acknowledged: Vec<Acknowledged>,
    /// Keys used, and those given up without a definite answer.
    pub keys: usize,
    pub abandoned: usize,
}

#[derive(Clone)]
pub struct Shop {
    pub base: String,
    pub product_id: String,
    pub buyer_tokens: Vec<String>,
}

pub struct Workload {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
    outcome: Arc<Mutex<Outcome>>,
}

impl Workload {
    /// Starts one buyer and one reader per buyer token.
    pub fn start(shop: &Shop) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let client = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().unwrap();
        let mut tasks = JoinSet::new();
        for token in &shop.buyer_tokens {
            let buyer = Client {
                http: client.clone(),
                shop: shop.clone(),
                token: token.clone(),
                outcome: Arc::clone(&outcome),
            };
            let reader = Client { token: token.clone(), ..buyer.clone() };
            tasks.spawn(buyer.buy_until(Arc::clone(&stop)));
            tasks.spawn(reader.read_until(Arc::clone(&stop)));
        }
        Workload { stop, tasks, outcome }
    }

    /// Stops starting new work, lets every buyer settle its key, and returns
    /// what happened.
    pub async fn finish(mut self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(joined) = self.tasks.join_next().await {
            joined.expect("a workload task panicked");
        }
        std::mem::take(&mut *self.outcome.lock().unwrap())
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    shop: Shop,
    token: String,
    outcome: Arc<Mutex<Outcome>>,
}

impl Client {
    async fn buy_until(self, stop: Arc<AtomicBool>) {
        let mut round = 0u64;
        while !stop.load(Ordering::SeqCst) {
            round += 1;
            self.buy_once(uuid::Uuid::new_v4().to_string(), 1 + round % 3).await;
        }
    }

    /// Places one order under a new key, retrying the same key on 503, on
    /// 409 (the key's first request still in flight) and on transport
    /// errors, until a definite answer or the retry window closes.
    async fn buy_once(&self, key: String, quantity: u64) {
        self.outcome.lock().unwrap().keys += 1;
        let body = json!({"items": [{"productId": self.shop.product_id, "quantity": quantity}]});
        let give_up = Instant::now() + KEY_RETRY_WINDOW;
        loop {
            let request = self
                .http
                .post(format!("{}/api/orders", self.shop.base))
                .bearer_auth(&self.token)
                .header("idempotency-key", &key)
                .json(&body);
            let (answer, text) = self.send("order", request).await;
            match answer.status {
                Some(201) => {
                    let order: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let order_id = order["id"].as_str().unwrap().to_owned();
                    self.outcome.lock().unwrap().acknowledged.push(Acknowledged { key, order_id, quantity });
                    return;
                }
                Some(409 | 503) | None if Instant::now() < give_up => tokio::time::sleep(PAUSE).await,
                Some(409 | 503) | None => {
                    self.outcome.lock().unwrap().abandoned += 1;
                    return;
                }
                // Anything else is logged and judged by the scenario.
                Some(_) => return,
            }
        }
    }

    async fn read_until(self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::SeqCst) {
            let product = self.http.get(format!("{}/api/products/{}", self.shop.base, self.shop.product_id));
            self.send("product", product).await;
            let orders = self.http.get(format!("{}/api/orders?limit=5", self.shop.base)).bearer_auth(&self.token);
            self.send("orders", orders).await;
            tokio::time::sleep(PAUSE).await;
        }
    }

    async fn send(&self, what: &'static str, request: reqwest::RequestBuilder) -> (Answer, String) {
        let sent_at = Instant::now();
        let result = request.send().await;
        let (status, json, retry_after, text) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers();
                let json = headers.get("content-type").is_some_and(|v| v == "application/json");
                let retry_after = headers.contains_key("retry-after");
                (Some(status), json, retry_after, response.text().await.unwrap_or_default())
            }
            Err(_) => (None, false, false, String::new()),
        };
        let answer = Answer { what, status, json, retry_after, sent_at, latency: sent_at.elapsed() };
        self.outcome.lock().unwrap().answers.push(answer.clone());
        (answer, text)
    }
}

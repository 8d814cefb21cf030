//! Fault tests: the real `shop-local` under a bounded load of buyers and
//! readers while its stand-ins fail, on loopback, every process stopped by
//! its PID.
//!
//! On DynamoDB Local + Redis (each started by this test with its data in a
//! folder): (a) Redis frozen, then resumed; (b) Redis killed, then
//! restarted; (c) DynamoDB Local frozen, then resumed; (d) DynamoDB Local
//! stopped with SIGTERM, then restarted on its data (SIGKILL would lose its
//! last acknowledged transaction, which DynamoDB itself never does). On the
//! embedded default: `shop-local` killed with SIGKILL during orders and
//! restarted on its data folder. And the stale-price scenario: a price
//! changed while Redis was down is not served stale after it is back.
//!
//! Every scenario holds the server to: no answer but the documented ones
//! (no 5xx but a JSON 503 with `Retry-After`); every answer within the
//! request deadline + 1 s; once the store's breaker is open, 503s within
//! 100 ms; `/health` degraded or unavailable during the fault and `ok`
//! after it without a restart; every acknowledged order exists; one order
//! per key; stock + units in orders = the initial stock. Each scenario
//! prints its figures (`local-stack/fault-figures.sh` collects them).
//!
//! Not part of `cargo test --workspace` (`test = false`): test-all.sh runs
//! it as its own step, `cargo test --workspace --test faults`.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod stand_in;
mod workload;

use std::time::Duration;

use helpers::{TestApp, expect_status};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shop::domain::ProductId;
use shop::store::CatalogStore;
use stand_in::StandIn;
use tokio::time::Instant;
use workload::{Acknowledged, Outcome, Shop, Workload};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(2000);
/// The longest any answer may take: the deadline plus a second.
const ANSWER_BOUND: Duration = Duration::from_millis(3000);
/// How fast an open breaker must answer.
const OPEN_BREAKER_BOUND: Duration = Duration::from_millis(100);
const INITIAL_STOCK: u64 = 1_000_000;
const BUYERS: usize = 3;
/// Load before the fault, and the fault's length.
const WARM_UP: Duration = Duration::from_secs(2);
const FAULT_LENGTH: Duration = Duration::from_secs(4);
/// How long the server may take to report `ok` once the fault is over:
/// a breaker's cool-down (5 s + jitter) plus a restarted stand-in's start.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// The shop every scenario sells from.
struct Fixture {
    shop: Shop,
    admin_token: String,
    buyer_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    FreezeRedis,
    KillRedis,
    FreezeDynamoDb,
    StopDynamoDb,
    CrashServer,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::FreezeRedis => "redis frozen (SIGSTOP) then resumed",
            Fault::KillRedis => "redis killed (SIGKILL) then restarted",
            Fault::FreezeDynamoDb => "dynamodb local frozen (SIGSTOP) then resumed",
            Fault::StopDynamoDb => "dynamodb local stopped (SIGTERM) then restarted on its data",
            Fault::CrashServer => "shop-local killed (SIGKILL) then restarted on its data",
        }
    }

    fn hits_the_store(self) -> bool {
        matches!(self, Fault::FreezeDynamoDb | Fault::StopDynamoDb)
    }

    /// What `/health` must report at least once during the fault.
    fn health_during(self) -> Option<&'static str> {
        match self {
            Fault::FreezeRedis | Fault::KillRedis => Some("degraded"),
            Fault::FreezeDynamoDb | Fault::StopDynamoDb => Some("unavailable"),
            Fault::CrashServer => None,
        }
    }
}

/// The stand-ins of the DynamoDB scenarios.
struct StandIns {
    redis: StandIn,
    dynamodb: StandIn,
}

impl StandIns {
    async fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::FreezeRedis => self.redis.freeze(),
            Fault::KillRedis => self.redis.kill(),
            Fault::FreezeDynamoDb => self.dynamodb.freeze(),
            Fault::StopDynamoDb => self.dynamodb.terminate(),
            Fault::CrashServer => unreachable!("not a stand-in fault"),
        }
    }

    async fn lift(&mut self, fault: Fault) {
        match fault {
            Fault::FreezeRedis => self.redis.thaw(),
            Fault::KillRedis => self.redis.restart(),
            Fault::FreezeDynamoDb => self.dynamodb.thaw(),
            Fault::StopDynamoDb => self.dynamodb.restart(),
            Fault::CrashServer => unreachable!("not a stand-in fault"),
        }
    }
}

/// What one scenario measured.
struct Figures {
    fault: Fault,
    answers: usize,
    acknowledged: usize,
    abandoned: usize,
    /// From the fault to the end of the first 503.
    first_503: Option<Duration>,
    /// 503 latencies while the store's breaker was open.
    open_503s: Vec<Duration>,
    /// From the fault's end to `/health` answering `ok`.
    recovered: Duration,
    slowest: Duration,
}

impl Figures {
    fn print(&self) {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        let mut open = self.open_503s.clone();
        open.sort();
        let open = if open.is_empty() {
            "-".into()
        } else {
            format!("p50 {} / max {}", ms(open[open.len() / 2]), ms(*open.last().unwrap()))
        };
        println!(
            "FAULT-FIGURES | {} | answers {} | orders acknowledged {} | keys abandoned {} | first 503 after {} ms | open-breaker 503s {} ms | ok again {} ms after the fault ended | slowest answer {} ms",
            self.fault.name(),
            self.answers,
            self.acknowledged,
            self.abandoned,
            self.first_503.map_or("-".into(), ms),
            open,
            ms(self.recovered),
            ms(self.slowest),
        );
    }
}

#[tokio::test]
async fn dynamodb_local_and_redis_faults_keep_answers_bounded_and_books_right() {
    let dir = tempfile::tempdir().unwrap();
    let mut stand_ins = StandIns {
        redis: StandIn::start("start_redis", &dir.path().join("redis")),
        dynamodb: StandIn::start("start_dynamodb", &dir.path().join("dynamodb")),
    };
    let table = format!("shop-faults-{}", uuid::Uuid::new_v4().simple());
    let endpoint = format!("http://127.0.0.1:{}", stand_ins.dynamodb.port);
    let cache_url = format!("redis://127.0.0.1:{}", stand_ins.redis.port);
    let app = TestApp::spawn_with(&[
        ("STORE", "dynamodb"),
        ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ("TABLE_NAME", &table),
        ("CACHE_URL", &cache_url),
        ("REQUEST_TIMEOUT_MS", &REQUEST_TIMEOUT.as_millis().to_string()),
        ("RATE_LIMIT_MAX", "1000000000"),
        ("AUTH_RATE_LIMIT_MAX", "1000000000"),
        ("LOG_LEVEL", "warn,shop_local=info"),
    ])
    .await;
    let store = direct_store(&endpoint, &table).await;
    let fixture = set_up_shop(&app).await;
    let mut tally = Tally::default();
    for fault in [Fault::FreezeRedis, Fault::KillRedis, Fault::FreezeDynamoDb, Fault::StopDynamoDb] {
        let (outcome, mut figures) = run_scenario(&app, &fixture, fault, Some(&mut stand_ins)).await;
        let product_id = ProductId::parse(&fixture.shop.product_id).unwrap();
        // The store's own figure: after a cache outage a cached product
        // page may lag it until the change feed's invalidation lands (see
        // the stale-price scenario below).
        let stock = store.product_by_id(product_id).await.unwrap().unwrap().stock;
        check_books(&app, &fixture, &outcome, stock, &mut tally).await;
        figures.answers = outcome.answers.len();
        figures.print();
    }
}

/// How long after the cache is back a reader may still see a price from
/// before an outage (issue: "within 5 s"); the change feed's consumer
/// retries every second at most, so about a second is expected.
const STALE_BOUND: Duration = Duration::from_secs(5);
/// How long readers watch after the cache is back: past the cache
/// breaker's cool-down (5 s + 20 %), when cached pages are served again.
const WATCH_AFTER_RETURN: Duration = Duration::from_secs(12);

/// The scenario: a product page cached, Redis killed (its
/// append-only file kept, as a replicated ElastiCache keeps its data), the
/// price changed while it is down (the write path's invalidation is lost),
/// Redis back. Without the change feed the old price is served for the rest
/// of the entry's 5 minutes; with it, at most [`STALE_BOUND`] after Redis
/// is back.
#[tokio::test]
async fn a_price_changed_while_the_cache_was_down_is_not_served_stale_after_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = StandIn::start("start_redis", &dir.path().join("redis"));
    let dynamodb = StandIn::start("start_dynamodb", &dir.path().join("dynamodb"));
    let endpoint = format!("http://127.0.0.1:{}", dynamodb.port);
    let cache_url = format!("redis://127.0.0.1:{}", redis.port);
    let table = format!("shop-stale-{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(&[
        ("STORE", "dynamodb"),
        ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
        ("TABLE_NAME", &table),
        ("CACHE_URL", &cache_url),
        ("LOG_LEVEL", "warn,shop_local=info"),
    ])
    .await;
    let (admin, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    let product = app.product(&admin, "Rake", "Garden", 10.0, 5).await;
    let id = product["id"].as_str().unwrap().to_owned();
    app.settled().await;
    let price = |body: Value| body["price"].as_f64().unwrap();
    let cached = app.read_until_cached(&format!("/api/products/{id}")).await.expect("the page is cached");
    assert_eq!(price(cached), 10.0);
    let hits = |health: Value| health["cacheStats"]["hits"].as_u64().unwrap();
    let hits_before = hits(health(&app).await);
    // Redis writes its append-only file every second: let it.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    redis.kill();
    let changed = app.update_product(&admin, &id, json!({"price": 15.0})).await;
    assert_eq!(price(expect_status(changed, StatusCode::OK).await), 15.0);
    redis.restart();
    let back_at = Instant::now();

    let mut last_stale: Option<Duration> = None;
    let mut reads = 0;
    while back_at.elapsed() < WATCH_AFTER_RETURN {
        let seen = price(expect_status(app.get_product(&id).await, StatusCode::OK).await);
        reads += 1;
        if seen != 15.0 {
            assert_eq!(seen, 10.0, "only the old or the new price");
            last_stale = Some(back_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last_stale.is_none_or(|at| at <= STALE_BOUND),
        "the old price was served {last_stale:?} after the cache came back"
    );
    let after = health(&app).await;
    assert_eq!(after["checks"]["cache"], "ok");
    assert!(hits(after) > hits_before + 10, "the reads after the outage were served from the cache again");
    println!(
        "FAULT-FIGURES | price changed while Redis was down | {reads} reads in the {} s after it came back | last old price {}",
        WATCH_AFTER_RETURN.as_secs(),
        last_stale.map_or("never".to_owned(), |at| format!("{} ms after", at.as_millis()))
    );
}

#[tokio::test]
async fn a_killed_embedded_server_loses_no_acknowledged_order() {
    let mut app = TestApp::spawn_with(&[
        ("REQUEST_TIMEOUT_MS", &REQUEST_TIMEOUT.as_millis().to_string()),
        ("RATE_LIMIT_MAX", "1000000000"),
        ("AUTH_RATE_LIMIT_MAX", "1000000000"),
        ("LOG_LEVEL", "warn,shop_local=info"),
    ])
    .await;
    let fixture = set_up_shop(&app).await;
    let workload = Workload::start(&fixture.shop);
    tokio::time::sleep(WARM_UP).await;
    let crashed_at = Instant::now();
    app.crash_and_restart().await;
    let restarted_after = crashed_at.elapsed();
    tokio::time::sleep(WARM_UP).await;
    let outcome = workload.finish().await;
    check_answers(Fault::CrashServer, &outcome);
    let product = expect_status(app.get_product(&fixture.shop.product_id).await, StatusCode::OK).await;
    check_books(&app, &fixture, &outcome, product["stock"].as_u64().unwrap(), &mut Tally::default()).await;
    let figures = Figures {
        fault: Fault::CrashServer,
        answers: outcome.answers.len(),
        acknowledged: outcome.acknowledged.len(),
        abandoned: outcome.abandoned,
        first_503: None,
        open_503s: vec![],
        recovered: restarted_after,
        slowest: slowest(&outcome),
    };
    figures.print();
}

/// An admin, a category, one product with plenty of stock, and buyers.
async fn set_up_shop(app: &TestApp) -> Fixture {
    let (admin_token, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin_token, "Faults").await, StatusCode::CREATED).await;
    let product = app.product(&admin_token, "Sturdy Widget", "Faults", 9.99, INITIAL_STOCK).await;
    let mut buyer_tokens = Vec::new();
    let mut buyer_ids = Vec::new();
    for _ in 0..BUYERS {
        let (token, user) = app.signed_up_customer().await;
        buyer_tokens.push(token);
        buyer_ids.push(user["id"].as_str().unwrap().to_owned());
    }
    let shop = Shop { base: app.base.clone(), product_id: product["id"].as_str().unwrap().to_owned(), buyer_tokens };
    Fixture { shop, admin_token, buyer_ids }
}

async fn run_scenario(
    app: &TestApp,
    fixture: &Fixture,
    fault: Fault,
    mut stand_ins: Option<&mut StandIns>,
) -> (Outcome, Figures) {
    wait_for_health(app, "ok", RECOVERY_BOUND).await.unwrap_or_else(|| panic!("{}: not healthy before", fault.name()));
    let workload = Workload::start(&fixture.shop);
    tokio::time::sleep(WARM_UP).await;
    let fault_at = Instant::now();
    stand_ins.as_deref_mut().unwrap().inject(fault).await;
    let mut open_503s = Vec::new();
    if let Some(expected) = fault.health_during() {
        wait_for_health(app, expected, FAULT_LENGTH)
            .await
            .unwrap_or_else(|| panic!("{}: /health never said {expected} during the fault", fault.name()));
    }
    if fault.hits_the_store() {
        open_503s = answers_while_store_breaker_is_open(app, fixture).await;
    }
    tokio::time::sleep(FAULT_LENGTH.saturating_sub(fault_at.elapsed())).await;
    stand_ins.as_deref_mut().unwrap().lift(fault).await;
    let lifted_at = Instant::now();
    let recovered = wait_for_health(app, "ok", RECOVERY_BOUND)
        .await
        .unwrap_or_else(|| panic!("{}: /health not ok within {RECOVERY_BOUND:?} of the fault's end", fault.name()));
    tokio::time::sleep(WARM_UP).await;
    let outcome = workload.finish().await;
    check_answers(fault, &outcome);
    let first_503 = outcome
        .answers
        .iter()
        .filter(|answer| answer.status == Some(503) && answer.sent_at >= fault_at)
        .map(|answer| answer.sent_at + answer.latency - fault_at)
        .min();
    if fault.hits_the_store() {
        assert!(first_503.is_some(), "{}: no 503 while the store was down", fault.name());
    }
    let figures = Figures {
        fault,
        answers: 0,
        acknowledged: outcome.acknowledged.len(),
        abandoned: outcome.abandoned,
        first_503,
        open_503s,
        recovered: recovered - lifted_at,
        slowest: slowest(&outcome),
    };
    (outcome, figures)
}

/// Once `/health` shows the store's breaker open, ten reads of a buyer's
/// orders: each must be a 503 within [`OPEN_BREAKER_BOUND`]. Returns their
/// latencies.
async fn answers_while_store_breaker_is_open(app: &TestApp, fixture: &Fixture) -> Vec<Duration> {
    let until = Instant::now() + FAULT_LENGTH;
    loop {
        let health = health(app).await;
        if health["breakers"]["store"] == "open" {
            break;
        }
        assert!(Instant::now() < until, "the store's breaker never opened: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let response = app.orders(&fixture.shop.buyer_tokens[0], "").await;
        let latency = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        assert!(latency <= OPEN_BREAKER_BOUND, "an open breaker took {latency:?} to answer");
        latencies.push(latency);
    }
    latencies
}

/// Every answer documented and bounded in time.
fn check_answers(fault: Fault, outcome: &Outcome) {
    assert!(!outcome.acknowledged.is_empty(), "{}: no order was placed at all", fault.name());
    for answer in &outcome.answers {
        let allowed: &[u16] = match answer.what {
            "order" => &[201, 409, 503],
            _ => &[200, 503],
        };
        match answer.status {
            Some(status) => {
                assert!(allowed.contains(&status), "{}: {} answered {status}", fault.name(), answer.what);
                assert!(answer.json, "{}: a {status} without a JSON body", fault.name());
                if status == 503 {
                    assert!(answer.retry_after, "{}: a 503 without Retry-After", fault.name());
                }
                assert!(
                    answer.latency <= ANSWER_BOUND,
                    "{}: {} took {:?}, past the deadline + 1 s",
                    fault.name(),
                    answer.what,
                    answer.latency
                );
            }
            None => assert_eq!(fault, Fault::CrashServer, "{}: a request got no HTTP answer", fault.name()),
        }
    }
}

/// Keys over every scenario run against one store so far.
#[derive(Default)]
struct Tally {
    acknowledged: usize,
    abandoned: usize,
}

/// Every acknowledged order exists as acknowledged, no key placed two
/// orders (the store holds one order per acknowledged key, plus at most one
/// per key given up without an answer, whose write may have landed), and
/// stock + units in orders = the initial stock.
async fn check_books(app: &TestApp, fixture: &Fixture, outcome: &Outcome, stock_now: u64, tally: &mut Tally) {
    tally.acknowledged += outcome.acknowledged.len();
    tally.abandoned += outcome.abandoned;
    let mut ids: Vec<&str> = outcome.acknowledged.iter().map(|ack| ack.order_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), outcome.acknowledged.len(), "two keys were acknowledged with one order");
    for Acknowledged { key, order_id, quantity } in &outcome.acknowledged {
        let order = expect_status(app.order(&fixture.admin_token, order_id).await, StatusCode::OK).await;
        assert_eq!(order["items"][0]["quantity"].as_u64(), Some(*quantity), "order {order_id} of key {key}");
    }
    let (count, units) = orders_in_store(app, fixture).await;
    assert!(
        count >= tally.acknowledged,
        "acknowledged orders are missing: {count} stored, {} acknowledged",
        tally.acknowledged
    );
    assert!(
        count <= tally.acknowledged + tally.abandoned,
        "a key placed two orders: {count} stored for {} acknowledged and {} abandoned keys",
        tally.acknowledged,
        tally.abandoned
    );
    assert_eq!(stock_now + units, INITIAL_STOCK, "stock {stock_now} + {units} units in {count} orders");
    println!("books: {count} orders hold {units} units; stock {stock_now}; {} keys used so far", outcome.keys);
}

/// Every buyer's orders, paged through as the admin: (orders, units).
async fn orders_in_store(app: &TestApp, fixture: &Fixture) -> (usize, u64) {
    let (mut count, mut units) = (0, 0);
    for buyer in &fixture.buyer_ids {
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("userId={buyer}&limit=100");
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={cursor}"));
            }
            let page = expect_status(app.orders(&fixture.admin_token, &query).await, StatusCode::OK).await;
            for order in page["items"].as_array().unwrap() {
                count += 1;
                units += order["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|line| line["quantity"].as_u64().unwrap())
                    .sum::<u64>();
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    (count, units)
}

async fn health(app: &TestApp) -> Value {
    let response = app.health().await;
    response.json().await.unwrap_or(json!({}))
}

/// Polls `/health` until its status is `expected`; the time it took, or
/// `None` past `bound`.
async fn wait_for_health(app: &TestApp, expected: &str, bound: Duration) -> Option<Instant> {
    let until = Instant::now() + bound;
    while Instant::now() < until {
        if health(app).await["status"] == expected {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn slowest(outcome: &Outcome) -> Duration {
    outcome.answers.iter().map(|answer| answer.latency).max().unwrap_or_default()
}

/// The table read directly, not through the API's cache.
async fn direct_store(endpoint: &str, table: &str) -> shop::store::dynamodb::DynamoStore {
    let config = shop::Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        "TABLE_NAME" => Some(table.to_owned()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.to_owned()),
        "REQUEST_TIMEOUT_MS" => Some("10000".into()),
        _ => None,
    })
    .unwrap();
    shop::store::dynamodb::DynamoStore::connect(&config).await
}

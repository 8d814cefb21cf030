//! `query-bench`: how long the queries a customer or the reservation
//! expiry runs take on DynamoDB (Local), through the store port the
//! handlers call (no cache, no HTTP), so that a change of the table's keys
//! can be checked against the figures before it.
//!
//! ```text
//! query-bench [--orders N] [--runs R] [--json FILE]
//! ```
//!
//! It seeds a new table in the DynamoDB Local named by
//! `AWS_ENDPOINT_URL_DYNAMODB`: 200 products in 4 categories, 40
//! customers, N orders (default 2,000) of 1 to 3 lines, nine in ten of them
//! confirmed. Then each query runs R times (default 50) after two warm-up
//! runs, and it prints p50 and p95 per query. Run by `load/query-bench.sh`.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shop::Config;
use shop::domain::payment::StockMove;
use shop::domain::{
    CategoryName, Description, Money, Order, OrderId, OrderItem, OrderSource, OrderStatus, Product, ProductId,
    ProductName, ProductQuery, UserId,
};
use shop::events::Actor;
use shop::store::dynamodb::{DynamoStore, table};
use shop::store::{Store, StoreError, time_ordered_bound};
use time::{Duration, OffsetDateTime};

const USAGE: &str = "usage: query-bench [--orders N] [--runs R] [--json FILE]";
const PRODUCTS: usize = 200;
const CUSTOMERS: usize = 40;
const CATEGORIES: [&str; 4] = ["Electronics", "Books", "Garden", "Home"];
/// What the reservation expiry asks for at a time (`events::expiry`).
const SWEEP_PAGE: usize = 25;
/// Writes in flight while seeding.
const SEEDERS: usize = 16;

struct Options {
    orders: usize,
    runs: usize,
    json: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options { orders: 2_000, runs: 50, json: None };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--orders" => options.orders = value()?.parse().map_err(|_| "--orders takes a number")?,
            "--runs" => options.runs = value()?.parse().map_err(|_| "--runs takes a number")?,
            "--json" => options.json = Some(value()?),
            _ => return Err(USAGE.into()),
        }
    }
    Ok(options)
}

fn product(i: usize) -> Product {
    let now = OffsetDateTime::now_utc();
    Product {
        id: ProductId::new(),
        name: ProductName::parse(&format!("Bench Product {i}")).unwrap_or_else(|e| panic!("{e}")),
        description: Description::parse("A product of the query benchmark.").unwrap_or_default(),
        price: Money::from_minor(100 + (i as u64 * 7_919) % 50_000),
        category: CategoryName::parse(CATEGORIES[i % CATEGORIES.len()]).unwrap_or_else(|e| panic!("{e}")),
        stock: if i % 10 == 3 { 0 } else { 1_000_000 },
        stock_counters: 1,
        created_at: now,
        updated_at: now,
    }
}

fn order(n: usize, customers: &[UserId], products: &[Product]) -> Order {
    let now = OffsetDateTime::now_utc();
    let lines = 1 + n % 3;
    let items: Vec<OrderItem> = (0..lines)
        .map(|k| {
            let product = &products[(n * 7 + k * 13) % products.len()];
            OrderItem {
                product_id: product.id,
                product_name: product.name.as_str().to_owned(),
                quantity: 1,
                price_minor: product.price.minor(),
            }
        })
        .collect();
    Order {
        id: OrderId::new(),
        user_id: customers[n % customers.len()],
        total_amount: Money::from_minor(items.iter().map(|item| item.price_minor).sum()),
        items,
        status: OrderStatus::Pending,
        source: OrderSource::Cart,
        payment: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

async fn open() -> Result<DynamoStore, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").map_err(|_| "AWS_ENDPOINT_URL_DYNAMODB is not set")?;
    let table_name = format!("query-bench-{}", uuid::Uuid::new_v4().simple());
    let config = Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        "TABLE_NAME" => Some(table_name.clone()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.clone()),
        "REQUEST_TIMEOUT_MS" => Some("30000".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let store = DynamoStore::connect(&config).await;
    table::create_if_missing(store.client(), store.table()).await.map_err(|e| e.to_string())?;
    Ok(store)
}

/// The catalog and the orders, [`SEEDERS`] writes at a time; nine orders
/// in ten confirmed, the rest left pending for the sweep.
async fn seed(store: &Arc<dyn Store>, orders: usize) -> Result<(Vec<Product>, Vec<UserId>), StoreError> {
    let products: Vec<Product> = (0..PRODUCTS).map(product).collect();
    for product in &products {
        store.create_product(product).await?;
    }
    let customers: Vec<UserId> = (0..CUSTOMERS).map(|_| UserId::new()).collect();
    let in_stock: Vec<Product> = products.iter().filter(|p| p.stock > 0).cloned().collect();
    let shared = Arc::new((in_stock, customers.clone()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..SEEDERS {
        let (store, shared, next) = (Arc::clone(store), Arc::clone(&shared), Arc::clone(&next));
        writers.spawn(async move {
            let by = Actor::System { process: "query-bench".into() };
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= orders {
                    return Ok::<_, StoreError>(());
                }
                let placed = order(n, &shared.1, &shared.0);
                store.place_order(&placed, None).await?;
                if n % 10 != 0 {
                    let confirmed = Order { status: OrderStatus::Confirmed, ..placed.clone() };
                    store.update_order(&placed, &confirmed, StockMove::Keep, &by).await?;
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.map_err(|e| StoreError::Internal(e.to_string()))??;
    }
    Ok((products, customers))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `call` `runs` times after two warm-ups: (p50, p95, items of the
/// last run).
async fn time<F, Fut>(runs: usize, call: F) -> Result<(f64, f64, usize), StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StoreError>>,
{
    let mut millis = Vec::with_capacity(runs);
    let mut items = 0;
    for round in 0..runs + 2 {
        let started = Instant::now();
        items = call().await?;
        if round >= 2 {
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    millis.sort_by(f64::total_cmp);
    Ok((percentile(&millis, 50.0), percentile(&millis, 95.0), items))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match bench().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("query-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench() -> Result<(), String> {
    let options = options()?;
    let dynamo = open().await?;
    let (client, table_name) = (dynamo.client().clone(), dynamo.table().to_owned());
    let store: Arc<dyn Store> = Arc::new(dynamo);
    let started = Instant::now();
    let (products, customers) = seed(&store, options.orders).await.map_err(|e| format!("seeding: {e}"))?;
    println!("{} orders of {} customers seeded in {:.0} s", options.orders, CUSTOMERS, started.elapsed().as_secs_f64());
    let listing = |category: Option<&str>, in_stock: Option<bool>| ProductQuery {
        category: category.map(str::to_owned),
        in_stock,
        limit: 20,
        ..Default::default()
    };
    let store = &store;
    let mut results = Vec::new();
    println!("{:<28} {:>8} {:>8} {:>6}", "query", "p50 ms", "p95 ms", "items");
    macro_rules! measure {
        ($name:expr, $call:expr) => {{
            let (p50, p95, items) = time(options.runs, || async { $call }).await.map_err(|e| format!("{}: {e}", $name))?;
            println!("{:<28} {p50:>8.2} {p95:>8.2} {items:>6}", $name);
            results.push(json!({ "query": $name, "p50Ms": p50, "p95Ms": p95, "items": items }));
        }};
    }
    measure!("product page", store.product_by_id(products[5].id).await.map(|p| usize::from(p.is_some())));
    measure!("listing: newest", store.list_products(&listing(None, None)).await.map(|p| p.items.len()));
    measure!("listing: category", store.list_products(&listing(Some("books"), None)).await.map(|p| p.items.len()));
    measure!("listing: in stock", store.list_products(&listing(None, Some(true))).await.map(|p| p.items.len()));
    measure!("my orders", store.orders_of_user(customers[3], None, 20, None).await.map(|p| p.items.len()));
    let long_ago = OffsetDateTime::now_utc() - Duration::minutes(30);
    measure!("expiry sweep: none due", store.pending_orders_before(long_ago, SWEEP_PAGE).await.map(|o| o.len()));
    // One of the sweep's queries (it sends one per shard, all at once):
    // the same shape as the single query of the unsharded partition.
    let one_shard = || async {
        client
            .query()
            .table_name(&table_name)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk AND GSI2SK < :bound")
            .expression_attribute_values(":pk", AttributeValue::S("ORDERS#STATUS#pending#00".into()))
            .expression_attribute_values(":bound", AttributeValue::S(time_ordered_bound(long_ago)))
            .limit(2)
            .send()
            .await
            .map(|output| output.items().len())
            .map_err(|e| StoreError::Internal(e.to_string()))
    };
    measure!("expiry sweep: one shard", one_shard().await);
    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    measure!("expiry sweep: a page due", store.pending_orders_before(now, SWEEP_PAGE).await.map(|o| o.len()));
    let report = json!({ "orders": options.orders, "runs": options.runs, "queries": Value::Array(results) });
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(|e| e.to_string())?;
    }
    println!("{report}");
    Ok(())
}

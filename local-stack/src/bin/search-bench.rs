//! `search-bench`: what an uncached search costs at a given catalog size,
//! on either store, through the store port the handlers call (no cache, no
//! HTTP): latency per query kind, and on DynamoDB the read units each page
//! consumed (every call asks for its consumed capacity).
//!
//! ```text
//! search-bench --store embedded|dynamodb --catalog N [--runs R] [--json FILE]
//! ```
//!
//! It seeds a fresh store (a temporary folder, or a new table in the
//! DynamoDB Local named by `AWS_ENDPOINT_URL_DYNAMODB`) with N products
//! named from a 16-word vocabulary plus a model number, and one product
//! with a rare word, created first (so the oldest, the last a newest-first
//! read would reach). On DynamoDB the entries are then written in bulk by
//! the index rebuild, whose write units per product it reports. Then each
//! query kind runs R times after two warm-up runs. Run by
//! `load/search-bench.sh`, which starts DynamoDB Local.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::StreamSpecification;
use serde_json::{Value, json};
use shop::Config;
use shop::domain::search::index_keys;
use shop::domain::{
    CategoryName, Description, Money, Product, ProductId, ProductName, ProductPage, ProductQuery, SearchTerms,
};
use shop::metrics::{self, Metric};
use shop::store::dynamodb::{DynamoStore, table};
use shop::store::embedded::EmbeddedStore;
use shop::store::{Store, StoreError};
use time::OffsetDateTime;

const USAGE: &str = "usage: search-bench --store embedded|dynamodb --catalog N [--runs R] [--json FILE]";
const VOCABULARY: [&str; 16] = [
    "wireless", "laptop", "cable", "garden", "novel", "lamp", "stand", "charger", "guide", "kit", "ceramic", "mug",
    "leather", "wallet", "cotton", "shirt",
];
const CATEGORIES: [&str; 8] = ["Electronics", "Books", "Garden", "Home", "Kitchen", "Fashion", "Toys", "Sports"];
const RARE: &str = "zephyrine";
const ABSENT: &str = "quokka";
/// Writes in flight while seeding.
const SEEDERS: usize = 32;

struct Options {
    store: String,
    catalog: usize,
    runs: usize,
    json: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut store, mut catalog, mut runs, mut json) = (None, None, 30, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => store = Some(value()?),
            "--catalog" => catalog = Some(value()?.parse().map_err(|_| "--catalog takes a number")?),
            "--runs" => runs = value()?.parse().map_err(|_| "--runs takes a number")?,
            "--json" => json = Some(value()?),
            _ => return Err(USAGE.into()),
        }
    }
    let store = store.filter(|s| s == "embedded" || s == "dynamodb").ok_or(USAGE)?;
    Ok(Options { store, catalog: catalog.ok_or(USAGE)?, runs, json })
}

/// Product `i`: three vocabulary words and a model number; prices and
/// stock spread so that every filter matches a share of the catalog.
fn product(i: usize) -> Product {
    let now = OffsetDateTime::now_utc();
    let word = |k: usize| VOCABULARY[(i / 16usize.pow(k as u32) + k * 5) % 16];
    let title = |w: &str| w[..1].to_uppercase() + &w[1..];
    let name = if i == 0 {
        format!("{} Reading Lamp", title(RARE))
    } else {
        format!("{} {} {} {}", title(word(0)), title(word(1)), title(word(2)), 1000 + i % 9000)
    };
    Product {
        id: ProductId::new(),
        name: ProductName::parse(&name).unwrap_or_else(|e| panic!("{name}: {e}")),
        description: Description::parse(&format!("A {} for the {}.", word(1), word(0))).unwrap_or_default(),
        price: Money::from_minor(100 + (i as u64 * 7_919) % 50_000),
        category: CategoryName::parse(CATEGORIES[i % CATEGORIES.len()]).unwrap_or_else(|e| panic!("{e}")),
        stock: if i % 10 == 3 { 0 } else { 1 + (i as u64 % 50) },
        stock_counters: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The store under test; on DynamoDB also the adapter itself (see [`index`]).
struct Opened {
    store: Arc<dyn Store>,
    dynamodb: Option<Arc<DynamoStore>>,
    dir: Option<std::path::PathBuf>,
}

async fn open(options: &Options) -> Result<Opened, String> {
    if options.store == "embedded" {
        let dir = std::env::temp_dir().join(format!("search-bench-{}", uuid::Uuid::new_v4().simple()));
        let store = EmbeddedStore::open(&dir).map_err(|e| e.to_string())?;
        return Ok(Opened { store: Arc::new(store), dynamodb: None, dir: Some(dir) });
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").map_err(|_| "AWS_ENDPOINT_URL_DYNAMODB is not set")?;
    let table_name = format!("search-bench-{}", uuid::Uuid::new_v4().simple());
    let config = Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        "TABLE_NAME" => Some(table_name.clone()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.clone()),
        "DYNAMODB_CONSUMED_CAPACITY" => Some("on".into()),
        "REQUEST_TIMEOUT_MS" => Some("30000".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let store = DynamoStore::connect(&config).await;
    table::create_if_missing(store.client(), store.table()).await.map_err(|e| e.to_string())?;
    // Nothing here reads the stream (the rebuild writes the entries), and
    // DynamoDB Local's stream records slow its writes several-fold as they
    // pile up: 100k products' entries would take hours.
    let no_stream = StreamSpecification::builder().stream_enabled(false).build().map_err(|e| e.to_string())?;
    let disabled = store.client().update_table().table_name(store.table()).stream_specification(no_stream);
    disabled.send().await.map_err(|e| format!("disabling the stream: {e}"))?;
    let store = Arc::new(store);
    Ok(Opened { store: Arc::clone(&store) as Arc<dyn Store>, dynamodb: Some(store), dir: None })
}

/// Builds the index of the seeded catalog: `shop-local reindex`'s work. On
/// DynamoDB without its sweep of stale entries (a new table has none), a
/// Scan that DynamoDB Local pages in time growing with the square of the
/// table's size.
async fn index(opened: &Opened) -> Result<u64, StoreError> {
    match &opened.dynamodb {
        Some(dynamodb) => dynamodb.write_search_entries().await.map(|products| products.len() as u64),
        None => opened.store.rebuild_search_index().await,
    }
}

/// Creates the catalog, [`SEEDERS`] writes at a time, oldest first for
/// the rare product (its id is the smallest).
async fn seed(store: &Arc<dyn Store>, catalog: usize) -> Result<(), StoreError> {
    store.create_product(&product(0)).await?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let mut writers = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    for _ in 0..SEEDERS {
        let (store, next) = (Arc::clone(store), Arc::clone(&next));
        writers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i > catalog {
                    return Ok::<_, StoreError>(());
                }
                store.create_product(&product(i)).await?;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.map_err(|e| StoreError::Internal(e.to_string()))??;
    }
    Ok(())
}

/// The query kinds: (name, query string as the API takes it, query).
fn kinds() -> Vec<(&'static str, &'static str, ProductQuery)> {
    let q = |words: &str| ProductQuery {
        terms: SearchTerms::parse(words).unwrap_or_default(),
        limit: 20,
        ..Default::default()
    };
    let money = |minor| Some(Money::from_minor(minor));
    let category = Some("home".to_owned());
    vec![
        ("absent word", "q=quokka", q(ABSENT)),
        ("rare word", "q=zephyrine", q(RARE)),
        ("common word", "q=laptop", q("laptop")),
        ("common prefix", "q=la", q("la")),
        ("common + category", "q=laptop&category=Home", ProductQuery { category: category.clone(), ..q("laptop") }),
        (
            "common + category + price",
            "q=laptop&category=Home&minPrice=50&maxPrice=150",
            ProductQuery {
                category: category.clone(),
                min_price: money(5_000),
                max_price: money(15_000),
                ..q("laptop")
            },
        ),
        (
            "common + price",
            "q=laptop&minPrice=50&maxPrice=150",
            ProductQuery { min_price: money(5_000), max_price: money(15_000), ..q("laptop") },
        ),
        ("common + inStock", "q=laptop&inStock=true", ProductQuery { in_stock: Some(true), ..q("laptop") }),
        ("rare + category", "q=zephyrine&category=Home", ProductQuery { category: category.clone(), ..q(RARE) }),
        ("two common words", "q=laptop+mug", q("laptop mug")),
        ("common + rare word", "q=laptop+zephyrine", q("laptop zephyrine")),
        ("common + absent word", "q=laptop+quokka", q("laptop quokka")),
    ]
}

struct Sample {
    millis: f64,
    read_units: f64,
    page: ProductPage,
}

async fn run(store: &Arc<dyn Store>, query: &ProductQuery) -> Result<Sample, StoreError> {
    let started = Instant::now();
    let (page, recorded) = metrics::record(store.list_products(query)).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Sample { millis, read_units: recorded.get(Metric::ReadCapacityUnits).unwrap_or(0.0), page: page? })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match bench().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("search-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench() -> Result<(), String> {
    let options = options()?;
    let opened = open(&options).await?;
    let store = Arc::clone(&opened.store);
    let started = Instant::now();
    seed(&store, options.catalog).await.map_err(|e| format!("seeding: {e}"))?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (indexed, recorded) = metrics::record(index(&opened)).await;
    let indexed = indexed.map_err(|e| format!("indexing: {e}"))?;
    let index_seconds = started.elapsed().as_secs_f64();
    let entries: usize = (0..=options.catalog.min(1000)).map(|i| index_keys(&product(i)).len()).sum();
    let entries_per_product = entries as f64 / (options.catalog.min(1000) + 1) as f64;
    let write_units = recorded.get(Metric::WriteCapacityUnits).unwrap_or(0.0) / indexed.max(1) as f64;
    println!(
        "{} store, {} products (+1 rare): seeded in {seed_seconds:.0} s, index rebuilt in {index_seconds:.0} s; \
         {entries_per_product:.1} entries a product{}",
        options.store,
        options.catalog,
        if write_units > 0.0 { format!(", {write_units:.1} write units a product's entries") } else { String::new() }
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>10} {:>6} {:>6}",
        "query", "p50 ms", "p95 ms", "max ms", "read units", "items", "next"
    );
    let mut results = Vec::new();
    for (name, query_string, query) in kinds() {
        let mut samples = Vec::new();
        for round in 0..options.runs + 2 {
            let sample = run(&store, &query).await.map_err(|e| format!("{name}: {e}"))?;
            if round >= 2 {
                samples.push(sample);
            }
        }
        let mut millis: Vec<f64> = samples.iter().map(|s| s.millis).collect();
        millis.sort_by(f64::total_cmp);
        let units = samples.iter().map(|s| s.read_units).fold(0.0, f64::max);
        let last = samples.last().ok_or("no runs")?;
        let (p50, p95, max) = (percentile(&millis, 50.0), percentile(&millis, 95.0), millis[millis.len() - 1]);
        println!(
            "{name:<28} {p50:>8.2} {p95:>8.2} {max:>8.2} {units:>10.1} {:>6} {:>6}",
            last.page.items.len(),
            if last.page.next.is_some() { "yes" } else { "no" }
        );
        results.push(json!({
            "query": name, "parameters": query_string, "p50Ms": p50, "p95Ms": p95, "maxMs": max,
            "readUnits": units, "items": last.page.items.len(), "next": last.page.next.is_some(),
        }));
    }
    let report = json!({
        "store": options.store, "catalog": options.catalog, "runs": options.runs,
        "seedSeconds": seed_seconds, "indexSeconds": index_seconds,
        "entriesPerProduct": entries_per_product, "indexWriteUnitsPerProduct": write_units,
        "queries": Value::Array(results),
    });
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(|e| e.to_string())?;
    }
    println!("{report}");
    if let Some(dir) = &opened.dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

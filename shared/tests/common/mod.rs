//! Which adapters the contract suites run against.
//!
//! The embedded store and the in-process cache always run. DynamoDB Local
//! and Redis run when `SHOP_TEST_DYNAMODB_URL` / `SHOP_TEST_REDIS_URL` name
//! them (the test script starts both); under `CI=true` a missing server is
//! a failure, not a skip.

#![allow(dead_code)]

use std::sync::Arc;

use shop::Config;
use shop::cache::Cache;
use shop::cache::memory::MemoryCache;
use shop::cache::redis::RedisCache;
use shop::domain::{
    CategoryName, Description, Money, Order, OrderId, OrderItem, OrderStatus, Product, ProductId, ProductName,
    StockChange, UserId,
};
use shop::store::dynamodb::{DynamoStore, table};
use shop::store::embedded::EmbeddedStore;
use shop::store::{ProductUpdate, Store};
use time::OffsetDateTime;

pub fn server_url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{variable} is not set: under CI=true every adapter's server must be running")
        }
        _ => {
            eprintln!("note: {variable} is not set; skipping that adapter (run local-stack/test-all.sh)");
            None
        }
    }
}

/// A fresh, isolated store; the temporary folder lives as long as it.
pub struct StoreFixture {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub fn embedded_store() -> Option<StoreFixture> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    Some(StoreFixture { store, _dir: Some(dir) })
}

/// `None` (the test passes vacuously, with a note) only outside CI.
pub async fn dynamodb_store() -> Option<StoreFixture> {
    let endpoint = server_url("SHOP_TEST_DYNAMODB_URL")?;
    Some(StoreFixture { store: Arc::new(fresh_dynamo_store(&endpoint).await), _dir: None })
}

/// A DynamoDB store on a new table of its own.
pub async fn fresh_dynamo_store(endpoint: &str) -> DynamoStore {
    fresh_dynamo(endpoint).await.0
}

/// A DynamoDB store on a new table of its own, and its configuration.
pub async fn fresh_dynamo(endpoint: &str) -> (DynamoStore, Config) {
    fresh_dynamo_with(endpoint, &[]).await
}

/// [`fresh_dynamo`] with more configuration variables (`NAME`, value).
pub async fn fresh_dynamo_with(endpoint: &str, variables: &[(&str, &str)]) -> (DynamoStore, Config) {
    let table_name = format!("shop-test-{}", uuid::Uuid::new_v4().simple());
    let config = Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        "TABLE_NAME" => Some(table_name.clone()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.to_owned()),
        _ => variables.iter().find(|(known, _)| *known == name).map(|(_, value)| (*value).to_owned()),
    })
    .unwrap();
    let store = DynamoStore::connect(&config).await;
    table::create_if_missing(store.client(), store.table()).await.unwrap();
    (store, config)
}

/// A product of the category Kitchen, saved in `store`, its times whole
/// seconds (what every store keeps exactly).
pub async fn stocked(store: &Arc<dyn Store>, name: &str, price: u64, stock: u64) -> Product {
    counted(store, name, price, stock, 1).await
}

/// [`stocked`], its units spread over `counters` stock counters.
pub async fn counted(store: &Arc<dyn Store>, name: &str, price: u64, stock: u64, counters: u16) -> Product {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let product = Product {
        id: ProductId::new(),
        name: ProductName::parse(name).unwrap(),
        description: Description::default(),
        price: Money::from_minor(price),
        category: CategoryName::parse("Kitchen").unwrap(),
        stock,
        stock_counters: counters,
        created_at: now,
        updated_at: now,
    };
    store.create_product(&product).await.unwrap();
    product
}

pub fn memory_cache() -> Option<Arc<dyn Cache>> {
    Some(Arc::new(MemoryCache::new()))
}

/// `None` (the test passes vacuously, with a note) only outside CI.
pub fn redis_cache() -> Option<Arc<dyn Cache>> {
    let url = server_url("SHOP_TEST_REDIS_URL")?;
    Some(Arc::new(RedisCache::connect(&url).unwrap()))
}

/// Runs each named case (an `async fn(Arc<dyn Store>)`) once per store
/// adapter, as `embedded::<case>` and `dynamodb::<case>`.
#[macro_export]
macro_rules! store_contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $case() {
                let fixture = $crate::common::embedded_store().unwrap();
                super::$case(fixture.store.clone()).await;
            })*
        }
        mod dynamodb {
            $(#[tokio::test]
            async fn $case() {
                let Some(fixture) = $crate::common::dynamodb_store().await else { return };
                super::$case(fixture.store.clone()).await;
            })*
        }
    };
}

/// Runs each named case (an `async fn(Arc<dyn Cache>)`) once per cache
/// adapter, as `memory::<case>` and `redis::<case>`.
#[macro_export]
macro_rules! cache_contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $case() {
                super::$case($crate::common::memory_cache().unwrap()).await;
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $case() {
                let Some(cache) = $crate::common::redis_cache() else { return };
                super::$case(cache).await;
            })*
        }
    };
}

/// Now in whole seconds (what every store keeps exactly).
fn whole_seconds_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

/// A pending order of `user_id` for `lines` (product, quantity), priced
/// from the products.
pub fn order_of(user_id: UserId, lines: &[(&Product, u64)]) -> Order {
    let items: Vec<OrderItem> = lines
        .iter()
        .map(|(product, quantity)| OrderItem {
            product_id: product.id,
            product_name: product.name.as_str().to_owned(),
            quantity: *quantity,
            price_minor: product.price.minor(),
        })
        .collect();
    Order {
        id: OrderId::new(),
        user_id,
        total_amount: shop::domain::order::order_total(&items).unwrap(),
        items,
        status: OrderStatus::Pending,
        source: shop::domain::OrderSource::Api,
        payment: Default::default(),
        created_at: whole_seconds_now(),
        updated_at: whole_seconds_now(),
    }
}

/// An update of `product` keeping all but its stock, changed by `stock`
/// and spread over `counters` counters.
pub fn product_update(product: &Product, stock: StockChange, counters: u16) -> ProductUpdate {
    ProductUpdate {
        id: product.id,
        name: product.name.clone(),
        description: product.description.clone(),
        price: product.price,
        category: product.category.clone(),
        stock,
        stock_counters: counters,
        updated_at: whole_seconds_now(),
    }
}

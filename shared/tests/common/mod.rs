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
use shop::store::Store;
use shop::store::dynamodb::{DynamoStore, table};
use shop::store::embedded::EmbeddedStore;

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

/// A fresh, isolated store of every available kind. The temporary folder
/// must outlive the embedded store, so it is returned too.
pub async fn stores() -> (Vec<Arc<dyn Store>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: Vec<Arc<dyn Store>> = vec![Arc::new(EmbeddedStore::open(dir.path()).unwrap())];
    if let Some(endpoint) = server_url("SHOP_TEST_DYNAMODB_URL") {
        stores.push(Arc::new(fresh_dynamo_store(&endpoint).await));
    }
    (stores, dir)
}

/// A DynamoDB store on a new table of its own.
pub async fn fresh_dynamo_store(endpoint: &str) -> DynamoStore {
    let table_name = format!("shop-test-{}", uuid::Uuid::new_v4().simple());
    let config = Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        "TABLE_NAME" => Some(table_name.clone()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.to_owned()),
        _ => None,
    })
    .unwrap();
    let store = DynamoStore::connect(&config).await;
    table::create_if_missing(store.client(), store.table()).await.unwrap();
    store
}

pub fn caches() -> Vec<Arc<dyn Cache>> {
    let mut caches: Vec<Arc<dyn Cache>> = vec![Arc::new(MemoryCache::new())];
    if let Some(url) = server_url("SHOP_TEST_REDIS_URL") {
        caches.push(Arc::new(RedisCache::connect(&url).unwrap()));
    }
    caches
}

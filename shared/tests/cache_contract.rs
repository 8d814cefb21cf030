//! The cache port's contract, run against every adapter.

mod common;

use std::sync::Arc;
use std::time::Duration;

use shop::cache::Cache;

fn key(name: &str) -> String {
    // Redis is shared by every test run: keys must not collide.
    format!("test:{}:{name}", uuid::Uuid::new_v4().simple())
}

async fn a_value_set_is_read_back_until_deleted(cache: Arc<dyn Cache>) {
    let key = key("value");
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.set(&key, b"{\"a\":1}", Duration::from_secs(60)).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some(&b"{\"a\":1}"[..]));
    cache.set(&key, b"second", Duration::from_secs(60)).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some(&b"second"[..]));
    cache.delete(&key).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.delete(&key).await.expect("deleting a missing key is fine");
}

async fn two_values_are_read_together(cache: Arc<dyn Cache>) {
    let (first, second) = (key("first"), key("second"));
    assert_eq!(cache.get_two(&first, &second).await.unwrap(), [None, None]);
    cache.set(&second, b"two", Duration::from_secs(60)).await.unwrap();
    assert_eq!(cache.get_two(&first, &second).await.unwrap(), [None, Some(b"two".to_vec())]);
    cache.set(&first, b"one", Duration::from_secs(60)).await.unwrap();
    assert_eq!(cache.get_two(&first, &second).await.unwrap(), [Some(b"one".to_vec()), Some(b"two".to_vec())]);
    assert_eq!(cache.get_two(&second, &second).await.unwrap(), [Some(b"two".to_vec()), Some(b"two".to_vec())]);
}

async fn a_value_expires_after_its_ttl(cache: Arc<dyn Cache>) {
    let key = key("ttl");
    cache.set(&key, b"soon gone", Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(cache.get(&key).await.unwrap(), None);
}

async fn a_counter_starts_at_one_and_counts(cache: Arc<dyn Cache>) {
    let key = key("counter");
    for expected in 1..=5 {
        assert_eq!(cache.increment(&key, Duration::from_secs(60)).await.unwrap(), expected);
    }
}

async fn concurrent_increments_never_lose_a_count(cache: Arc<dyn Cache>) {
    let key = key("concurrent");
    let increments = (0..50).map(|_| {
        let (cache, key) = (Arc::clone(&cache), key.clone());
        async move { cache.increment(&key, Duration::from_secs(60)).await.unwrap() }
    });
    let mut counts = futures::future::join_all(increments).await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<u64>>());
}

async fn a_counter_expires_from_its_creation_not_its_last_increment(cache: Arc<dyn Cache>) {
    let key = key("window");
    let ttl = Duration::from_millis(800);
    assert_eq!(cache.increment(&key, ttl).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cache.increment(&key, ttl).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.increment(&key, ttl).await.unwrap(), 1, "{}: the window did not end", cache.kind());
}

async fn every_adapter_answers_a_ping(cache: Arc<dyn Cache>) {
    cache.ping().await.unwrap_or_else(|e| panic!("{}: {e}", cache.kind()));
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    // rediss:// is what ElastiCache Serverless needs (TLS in transit).
    for url in ["redis://127.0.0.1:9", "rediss://127.0.0.1:9"] {
        let cache = shop::cache::redis::RedisCache::connect(url).unwrap();
        assert!(cache.get("anything").await.is_err(), "{url}");
        assert!(cache.increment("anything", Duration::from_secs(1)).await.is_err(), "{url}");
        assert!(cache.ping().await.is_err(), "{url}");
    }
}

cache_contract!(
    a_value_set_is_read_back_until_deleted,
    two_values_are_read_together,
    a_value_expires_after_its_ttl,
    a_counter_starts_at_one_and_counts,
    concurrent_increments_never_lose_a_count,
    a_counter_expires_from_its_creation_not_its_last_increment,
    every_adapter_answers_a_ping,
);

//! The cache port: byte values with a time to live, and counters for the
//! rate limiter.
//!
//! Two adapters: [`redis::RedisCache`] (ElastiCache / Valkey, or a local
//! `redis-server`) and [`memory::MemoryCache`] (in-process, bounded).
//! The cache is never the source of truth: a caller that gets an error
//! carries on without it. `tests/cache_contract.rs` runs one suite against
//! both adapters.

pub mod generational;
pub mod memory;
mod prefixed;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::Config;

/// The cache could not answer.
#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Both values, in one round trip where the adapter has round trips
    /// (a pipeline of two GETs: no multi-key command, so the keys may live
    /// on different slots of a clustered cache).
    async fn get_two(&self, first: &str, second: &str) -> Result<[Option<Vec<u8>>; 2], CacheError> {
        Ok([self.get(first).await?, self.get(second).await?])
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    async fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// Atomically adds one to the counter `key` and returns the new count.
    /// A counter that did not exist starts at 1 and lives for `ttl`; later
    /// increments do not extend its life.
    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError>;

    /// A round trip proving the cache answers (for `/health`).
    async fn ping(&self) -> Result<(), CacheError>;

    /// The adapter's name, for logs.
    fn kind(&self) -> &'static str;
}

/// Builds the adapter the configuration names (Redis for a `CACHE_URL`, the
/// in-process cache otherwise), with every key under `CACHE_KEY_PREFIX`.
pub fn connect(config: &Config) -> Result<Arc<dyn Cache>, CacheError> {
    let inner: Arc<dyn Cache> = match &config.cache_url {
        Some(url) => Arc::new(redis::RedisCache::connect(url)?),
        None => Arc::new(memory::MemoryCache::new()),
    };
    Ok(Arc::new(prefixed::Prefixed::new(inner, &config.cache_key_prefix)))
}

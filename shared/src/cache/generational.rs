//! Read-through caching with generations, for the catalog.
//!
//! Each scope (one product, the product listings, the categories) has a
//! generation key. Entries are stored under the generation current when
//! the reader began; a write bumps the generation after it reaches the
//! store. A reader that raced the write stores its stale result under the
//! old generation, where nobody looks any more: a read after a write never
//! sees old data, and nothing has to be found and deleted.
//!
//! Every cache failure is a miss: the caller reads the store and carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Cache, CacheError};
use crate::metrics::{self, Metric};

/// A generation outlives every entry stored under it (the longest entry
/// TTL is minutes), so an expired generation key can only orphan entries
/// that are already gone.
const GENERATION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a lookup found.
pub enum Lookup {
    Hit(Vec<u8>),
    /// Not cached. Store the value under `generation` once read; `None`
    /// when the cache is down and storing is pointless.
    Miss { generation: Option<String> },
}

/// The catalog's cache, with hit and miss counters for this process.
pub struct GenerationalCache {
    cache: Arc<dyn Cache>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl GenerationalCache {
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        GenerationalCache { cache, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    pub async fn get(&self, scope: &str, key: &str) -> Lookup {
        let generation = match self.cache.get(&generation_key(scope)).await {
            Ok(found) => found.map_or_else(|| "0".to_owned(), |bytes| String::from_utf8_lossy(&bytes).into_owned()),
            Err(err) => {
                tracing::debug!(error = %err, "cache unavailable; reading the store");
                self.count_miss();
                return Lookup::Miss { generation: None };
            }
        };
        match self.cache.get(&entry_key(scope, &generation, key)).await {
            Ok(Some(value)) => {
                self.count_hit();
                Lookup::Hit(value)
            }
            Ok(None) => {
                self.count_miss();
                Lookup::Miss { generation: Some(generation) }
            }
            Err(_) => {
                self.count_miss();
                Lookup::Miss { generation: None }
            }
        }
    }

    pub async fn put(&self, scope: &str, generation: &str, key: &str, value: &[u8], ttl: Duration) {
        if let Err(err) = self.cache.set(&entry_key(scope, generation, key), value, ttl).await {
            tracing::debug!(error = %err, "could not cache a value");
        }
    }

    /// Makes every entry of `scope` unreachable. Call after the store write.
    /// A failure is logged, not returned: the change feed's
    /// cache-invalidation consumer redoes it once the cache is back.
    pub async fn invalidate(&self, scope: &str) {
        if let Err(err) = self.try_invalidate(scope).await {
            tracing::warn!(error = %err, scope, "could not invalidate a cache scope; the change feed will redo it");
        }
    }

    /// [`Self::invalidate`], telling whether it reached the cache: what a
    /// consumer that must retry until it succeeds calls.
    pub async fn try_invalidate(&self, scope: &str) -> Result<(), CacheError> {
        let generation = uuid::Uuid::new_v4().simple().to_string();
        self.cache.set(&generation_key(scope), generation.as_bytes(), GENERATION_TTL).await
    }

    fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        metrics::count(Metric::CacheHits);
    }

    fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        metrics::count(Metric::CacheMisses);
    }

    /// (hits, misses) since the process started.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

fn generation_key(scope: &str) -> String {
    format!("gen:{scope}")
}

fn entry_key(scope: &str, generation: &str, key: &str) -> String {
    format!("{scope}:{generation}:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCache;

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_put_value_is_a_hit_until_its_scope_is_invalidated() {
        let cache = GenerationalCache::new(Arc::new(MemoryCache::new()));
        let Lookup::Miss { generation: Some(generation) } = cache.get("product:1", "json").await else { panic!() };
        cache.put("product:1", &generation, "json", b"v1", TTL).await;
        assert!(matches!(cache.get("product:1", "json").await, Lookup::Hit(v) if v == b"v1"));
        cache.invalidate("product:1").await;
        assert!(matches!(cache.get("product:1", "json").await, Lookup::Miss { .. }));
        assert_eq!(cache.counts(), (1, 2));
    }

    #[tokio::test]
    async fn a_reader_that_raced_a_write_cannot_publish_stale_data() {
        let cache = GenerationalCache::new(Arc::new(MemoryCache::new()));
        // The reader looks up before the write...
        let Lookup::Miss { generation: Some(stale) } = cache.get("products", "page").await else { panic!() };
        // ...the writer writes the store and invalidates...
        cache.invalidate("products").await;
        // ...and the reader stores what it read before the write.
        cache.put("products", &stale, "page", b"old", TTL).await;
        assert!(matches!(cache.get("products", "page").await, Lookup::Miss { .. }));
    }

    #[tokio::test]
    async fn scopes_are_independent() {
        let cache = GenerationalCache::new(Arc::new(MemoryCache::new()));
        cache.put("product:1", "0", "json", b"one", TTL).await;
        cache.invalidate("product:2").await;
        assert!(matches!(cache.get("product:1", "json").await, Lookup::Hit(_)));
    }
}

//! Read-through caching with generations, for the catalog.
//!
//! Each scope (one product, the product listings, the categories) has a
//! generation key. Entries are stored tagged with the generation current
//! when the reader began; a write bumps the generation after it reaches the
//! store. A reader that raced the write stores its stale result tagged with
//! the old generation, which no lookup accepts any more: a read after a
//! write never sees old data, and nothing has to be found and deleted.
//!
//! A lookup fetches the generation and the entry together, in one round
//! trip ([`Cache::get_two`]), and compares the entry's tag with the
//! generation.
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
    Miss {
        generation: Option<String>,
    },
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
        let [generation, entry] = match self.cache.get_two(&generation_key(scope), &entry_key(scope, key)).await {
            Ok(found) => found,
            Err(err) => {
                tracing::debug!(error = %err, "cache unavailable; reading the store");
                self.count_miss();
                return Lookup::Miss { generation: None };
            }
        };
        let generation =
            generation.map_or_else(|| "0".to_owned(), |bytes| String::from_utf8_lossy(&bytes).into_owned());
        match entry.and_then(|entry| value_tagged(entry, &generation)) {
            Some(value) => {
                self.count_hit();
                Lookup::Hit(value)
            }
            None => {
                self.count_miss();
                Lookup::Miss { generation: Some(generation) }
            }
        }
    }

    /// Stores `value` tagged with `generation`, the one its lookup found,
    /// and waits for the write: what a caller that reads it back next (the
    /// tests, a worker) needs. Handlers answer first and call [`Self::fill`].
    pub async fn put(&self, scope: &str, generation: &str, key: &str, value: &[u8], ttl: Duration) {
        store(self.cache.as_ref(), &entry_key(scope, key), &tagged(generation, value), ttl).await;
    }

    /// [`Self::put`] without waiting for it: a request that read the store
    /// answers at once, and its cache write finishes beside the answer (one
    /// cache round trip off the critical path). A lookup that comes before
    /// the write lands is a miss, as it would have been before the read.
    pub fn fill(&self, scope: &str, generation: &str, key: &str, value: &[u8], ttl: Duration) {
        let (cache, key, tagged) = (Arc::clone(&self.cache), entry_key(scope, key), tagged(generation, value));
        tokio::spawn(async move { store(cache.as_ref(), &key, &tagged, ttl).await });
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

async fn store(cache: &dyn Cache, key: &str, tagged: &[u8], ttl: Duration) {
    if let Err(err) = cache.set(key, tagged, ttl).await {
        tracing::debug!(error = %err, "could not cache a value");
    }
}

/// `<generation>\n<value>`: what an entry holds.
fn tagged(generation: &str, value: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(generation.len() + 1 + value.len());
    tagged.extend_from_slice(generation.as_bytes());
    tagged.push(b'\n');
    tagged.extend_from_slice(value);
    tagged
}

fn generation_key(scope: &str) -> String {
    format!("gen:{scope}")
}

fn entry_key(scope: &str, key: &str) -> String {
    format!("{scope}:entry:{key}")
}

/// The value of an entry stored as `<generation>\n<value>`, if its
/// generation is `current`.
fn value_tagged(mut entry: Vec<u8>, current: &str) -> Option<Vec<u8>> {
    let tagged = entry.strip_prefix(current.as_bytes()).is_some_and(|rest| rest.first() == Some(&b'\n'));
    tagged.then(|| entry.split_off(current.len() + 1))
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
    async fn a_lookup_is_one_round_trip() {
        let counting = Arc::new(CountingCache::default());
        let cache = GenerationalCache::new(Arc::clone(&counting) as Arc<dyn Cache>);
        let Lookup::Miss { generation: Some(generation) } = cache.get("product:1", "json").await else { panic!() };
        cache.put("product:1", &generation, "json", b"v1", TTL).await;
        assert!(matches!(cache.get("product:1", "json").await, Lookup::Hit(v) if v == b"v1"));
        assert_eq!(counting.calls.load(Ordering::Relaxed), 3, "two lookups and one store");
    }

    #[tokio::test]
    async fn an_entry_whose_tag_is_only_a_prefix_of_the_generation_is_a_miss() {
        let cache = GenerationalCache::new(Arc::new(MemoryCache::new()));
        cache.put("products", "ab", "page", b"old", TTL).await;
        cache.cache.set(&generation_key("products"), b"a", TTL).await.unwrap();
        assert!(matches!(cache.get("products", "page").await, Lookup::Miss { .. }));
        cache.cache.set(&generation_key("products"), b"abc", TTL).await.unwrap();
        assert!(matches!(cache.get("products", "page").await, Lookup::Miss { .. }));
    }

    /// Counts the calls that reach the cache.
    #[derive(Default)]
    struct CountingCache {
        inner: MemoryCache,
        calls: AtomicU64,
    }

    #[async_trait::async_trait]
    impl Cache for CountingCache {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.get(key).await
        }
        async fn get_two(&self, first: &str, second: &str) -> Result<[Option<Vec<u8>>; 2], CacheError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            Ok([self.inner.get(first).await?, self.inner.get(second).await?])
        }
        async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.set(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<(), CacheError> {
            self.inner.delete(key).await
        }
        async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
            self.inner.increment(key, ttl).await
        }
        async fn ping(&self) -> Result<(), CacheError> {
            Ok(())
        }
        fn kind(&self) -> &'static str {
            "counting"
        }
    }

    #[tokio::test]
    async fn a_fill_lands_without_being_waited_for() {
        let cache = GenerationalCache::new(Arc::new(MemoryCache::new()));
        let Lookup::Miss { generation: Some(generation) } = cache.get("product:1", "json").await else { panic!() };
        cache.fill("product:1", &generation, "json", b"v1", TTL);
        for _ in 0..100 {
            if let Lookup::Hit(value) = cache.get("product:1", "json").await {
                assert_eq!(value, b"v1");
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the fill never landed");
    }

    #[tokio::test]
    async fn scopes_are_independent() {
        let cache = GenerationalCache::new(Arc::new(MemoryCache::new()));
        cache.put("product:1", "0", "json", b"one", TTL).await;
        cache.invalidate("product:2").await;
        assert!(matches!(cache.get("product:1", "json").await, Lookup::Hit(_)));
    }
}

//! The in-process cache: moka, bounded by bytes, with a time to live per
//! entry. What a single local process needs, and the rate limiter's
//! fallback when Redis is unreachable.
//!
//! moka's synchronous cache: its operations are short and never wait on
//! I/O, so they are fine on async threads, and it keeps the async-lock
//! machinery of moka's `future` cache out of the Lambda binaries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache as Moka;

use super::{Cache, CacheError};

/// Upper bound of what the cache holds, keys and values counted.
const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone)]
enum Value {
    Bytes(Arc<[u8]>),
    Counter(u64),
}

#[derive(Clone)]
struct Entry {
    value: Value,
    ttl: Duration,
}

/// Entries live for their own `ttl` from creation; updating a counter does
/// not extend its life.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _updated_at: Instant,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        match entry.value {
            Value::Counter(_) => remaining,
            Value::Bytes(_) => Some(entry.ttl),
        }
    }
}

/// The in-process adapter. Cloning shares the entries.
#[derive(Clone)]
pub struct MemoryCache {
    entries: Moka<String, Entry>,
}

impl MemoryCache {
    pub fn new() -> Self {
        let entries = Moka::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|key: &String, entry: &Entry| {
                let value = match &entry.value {
                    Value::Bytes(bytes) => bytes.len(),
                    Value::Counter(_) => 8,
                };
                u32::try_from(key.len() + value).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        MemoryCache { entries }
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.entries.get(key).and_then(|entry| match entry.value {
            Value::Bytes(bytes) => Some(bytes.to_vec()),
            Value::Counter(_) => None,
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let entry = Entry { value: Value::Bytes(Arc::from(value)), ttl };
        self.entries.insert(key.to_owned(), entry);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.invalidate(key);
        Ok(())
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        // `and_compute_with` runs under moka's per-key lock: concurrent
        // increments of one key never lose an update.
        let result = self.entries.entry_by_ref(key).and_compute_with(|current| {
            let next = match current.map(|entry| entry.into_value()) {
                Some(Entry { value: Value::Counter(count), ttl }) => Entry { value: Value::Counter(count + 1), ttl },
                _ => Entry { value: Value::Counter(1), ttl },
            };
            Op::Put(next)
        });
        match result.into_entry().map(|entry| entry.into_value().value) {
            Some(Value::Counter(count)) => Ok(count),
            _ => Err(CacheError("counter vanished during increment".into())),
        }
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

//! A cache whose keys all live under one prefix (`<prefix>:<key>`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Cache, CacheError};

pub(super) struct Prefixed {
    inner: Arc<dyn Cache>,
    prefix: String,
}

impl Prefixed {
    pub fn new(inner: Arc<dyn Cache>, prefix: &str) -> Self {
        Prefixed { inner, prefix: format!("{prefix}:") }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for Prefixed {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.inner.get(&self.key(key)).await
    }

    async fn get_two(&self, first: &str, second: &str) -> Result<[Option<Vec<u8>>; 2], CacheError> {
        self.inner.get_two(&self.key(first), &self.key(second)).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.inner.set(&self.key(key), value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.inner.delete(&self.key(key)).await
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        self.inner.increment(&self.key(key), ttl).await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.inner.ping().await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCache;

    #[tokio::test]
    async fn two_prefixes_on_one_cache_do_not_see_each_other() {
        let shared: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let (dev, prod) = (Prefixed::new(Arc::clone(&shared), "dev"), Prefixed::new(Arc::clone(&shared), "prod"));
        dev.set("k", b"dev", Duration::from_secs(60)).await.unwrap();
        assert_eq!(prod.get("k").await.unwrap(), None);
        assert_eq!(dev.increment("n", Duration::from_secs(60)).await.unwrap(), 1);
        assert_eq!(prod.increment("n", Duration::from_secs(60)).await.unwrap(), 1);
        assert_eq!(shared.get("dev:k").await.unwrap().as_deref(), Some(&b"dev"[..]));
    }
}

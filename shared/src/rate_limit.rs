//! Fixed-window rate limits per client IP, counted in the cache.
//!
//! A window is `RATE_LIMIT_WINDOW_SECONDS` long and aligned to the epoch, so
//! every Lambda instance counts into the same key (`rl:<class>:<window>:<ip>`)
//! and agrees on when it resets. When the shared cache cannot answer, the
//! instance counts in its own memory: limits then hold per instance instead
//! of globally, which beats both failing every request and not limiting.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::cache::memory::MemoryCache;
use crate::config::RateLimitConfig;

/// Which budget a route draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateClass {
    /// `/api/auth/*`: password hashing routes, the lower limit.
    Auth,
    /// Every other `/api` route.
    General,
}

impl RateClass {
    fn name(self) -> &'static str {
        match self {
            RateClass::Auth => "auth",
            RateClass::General => "general",
        }
    }
}

/// The outcome of counting one request, and what the headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining`.
    pub remaining: u64,
    /// `X-RateLimit-Reset`: unix seconds when the window ends.
    pub reset_at: u64,
    /// `Retry-After` when refused.
    pub retry_after: Duration,
}

pub struct RateLimiter {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
    config: RateLimitConfig,
}

impl RateLimiter {
    pub fn new(shared: Arc<dyn Cache>, config: RateLimitConfig) -> Self {
        RateLimiter { shared, local: MemoryCache::new(), config }
    }

    /// Counts one request of `client_ip` at `now_unix` (seconds).
    pub async fn check(&self, class: RateClass, client_ip: &str, now_unix: u64) -> RateDecision {
        let window = self.config.window.as_secs().max(1);
        let index = now_unix / window;
        let reset_at = (index + 1) * window;
        let key = format!("rl:{}:{index}:{client_ip}", class.name());
        // Keep the counter a little past its window so a slow clock on one
        // instance cannot restart a window another instance has counted.
        let ttl = Duration::from_secs(reset_at - now_unix + 1);
        let count = match self.shared.increment(&key, ttl).await {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(error = %err, "rate limit counter unavailable; counting in memory");
                self.local.increment(&key, ttl).await.unwrap_or(1)
            }
        };
        let limit = match class {
            RateClass::Auth => self.config.auth_max,
            RateClass::General => self.config.general_max,
        };
        RateDecision {
            allowed: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            reset_at,
            retry_after: Duration::from_secs(reset_at - now_unix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheError;
    use async_trait::async_trait;

    fn limiter(cache: Arc<dyn Cache>) -> RateLimiter {
        RateLimiter::new(
            cache,
            RateLimitConfig { window: Duration::from_secs(60), general_max: 3, auth_max: 2 },
        )
    }

    #[tokio::test]
    async fn requests_past_the_limit_are_refused_until_the_window_ends() {
        let limiter = limiter(Arc::new(MemoryCache::new()));
        let now = 6_000; // the start of a 60 s window
        let remaining: Vec<u64> = futures_remaining(&limiter, RateClass::General, now, 3).await;
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check(RateClass::General, "10.0.0.1", now + 15).await;
        assert!(!refused.allowed);
        assert_eq!(refused.reset_at, 6_060);
        assert_eq!(refused.retry_after, Duration::from_secs(45));
        assert!(limiter.check(RateClass::General, "10.0.0.1", now + 60).await.allowed);
    }

    #[tokio::test]
    async fn clients_and_classes_have_separate_budgets() {
        let limiter = limiter(Arc::new(MemoryCache::new()));
        for _ in 0..2 {
            assert!(limiter.check(RateClass::Auth, "10.0.0.1", 0).await.allowed);
        }
        assert!(!limiter.check(RateClass::Auth, "10.0.0.1", 0).await.allowed);
        assert!(limiter.check(RateClass::Auth, "10.0.0.2", 0).await.allowed);
        assert!(limiter.check(RateClass::General, "10.0.0.1", 0).await.allowed);
    }

    struct DownCache;

    #[async_trait]
    impl Cache for DownCache {
        async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn set(&self, _: &str, _: &[u8], _: Duration) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn delete(&self, _: &str) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn increment(&self, _: &str, _: Duration) -> Result<u64, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn ping(&self) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        fn kind(&self) -> &'static str {
            "down"
        }
    }

    #[tokio::test]
    async fn with_the_cache_down_limits_still_hold_in_memory() {
        let limiter = limiter(Arc::new(DownCache));
        let remaining = futures_remaining(&limiter, RateClass::General, 0, 3).await;
        assert_eq!(remaining, vec![2, 1, 0]);
        assert!(!limiter.check(RateClass::General, "10.0.0.1", 1).await.allowed);
    }

    async fn futures_remaining(limiter: &RateLimiter, class: RateClass, now: u64, n: usize) -> Vec<u64> {
        let mut remaining = Vec::new();
        for _ in 0..n {
            let decision = limiter.check(class, "10.0.0.1", now).await;
            assert!(decision.allowed);
            remaining.push(decision.remaining);
        }
        remaining
    }
}

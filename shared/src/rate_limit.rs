//! Fixed-window rate limits per client IP, and failed logins per account,
//! counted in the cache.
//!
//! A window is `RATE_LIMIT_WINDOW_SECONDS` long and aligned to the epoch, so
//! every Lambda instance counts into the same key (`rl:<class>:<window>:<ip>`)
//! and agrees on when it resets. When the shared cache cannot answer, the
//! instance counts in its own memory: limits then hold per instance instead
//! of globally, which beats both failing every request and not limiting.
//!
//! [`LoginThrottle`] counts failed logins per email, whatever the source IP
//! (a credential-stuffing run spread over many IPs), and blocks the email
//! for the rest of its window once `LOGIN_FAILURES_MAX` is reached.
//! Unknown emails are counted the same way, so the answer never tells
//! whether an account exists. A successful login does not reset the count:
//! an attacker who keeps guessing is not helped by the owner signing in
//! meanwhile.

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

/// The shared cache, with this instance's memory standing in while the
/// shared one cannot answer.
struct Counters {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
}

impl Counters {
    fn new(shared: Arc<dyn Cache>) -> Self {
        Counters { shared, local: MemoryCache::new() }
    }

    async fn increment(&self, key: &str, ttl: Duration) -> u64 {
        match self.shared.increment(key, ttl).await {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(error = %err, "shared counter unavailable; counting in memory");
                self.local.increment(key, ttl).await.unwrap_or(1)
            }
        }
    }

    /// Whether `key` is set here or in the shared cache.
    async fn is_set(&self, key: &str) -> bool {
        let local = self.local.get(key).await.ok().flatten().is_some();
        local || self.shared.get(key).await.ok().flatten().is_some()
    }

    /// Sets `key` in the shared cache, and in memory if that fails.
    async fn set(&self, key: &str, ttl: Duration) {
        if self.shared.set(key, b"1", ttl).await.is_err() {
            let _ = self.local.set(key, b"1", ttl).await;
        }
    }
}

/// A fixed window aligned to the epoch.
struct Window {
    index: u64,
    reset_at: u64,
    /// Until the window ends, and a second more so a slow clock on one
    /// instance cannot restart a window another instance has counted.
    ttl: Duration,
    retry_after: Duration,
}

impl Window {
    fn at(length: Duration, now_unix: u64) -> Self {
        let length = length.as_secs().max(1);
        let index = now_unix / length;
        let reset_at = (index + 1) * length;
        Window {
            index,
            reset_at,
            ttl: Duration::from_secs(reset_at - now_unix + 1),
            retry_after: Duration::from_secs(reset_at - now_unix),
        }
    }
}

pub struct RateLimiter {
    counters: Counters,
    config: RateLimitConfig,
}

impl RateLimiter {
    pub fn new(shared: Arc<dyn Cache>, config: RateLimitConfig) -> Self {
        RateLimiter { counters: Counters::new(shared), config }
    }

    /// Counts one request of `client_ip` at `now_unix` (seconds).
    pub async fn check(&self, class: RateClass, client_ip: &str, now_unix: u64) -> RateDecision {
        let window = Window::at(self.config.window, now_unix);
        let key = format!("rl:{}:{}:{client_ip}", class.name(), window.index);
        let count = self.counters.increment(&key, window.ttl).await;
        let limit = match class {
            RateClass::Auth => self.config.auth_max,
            RateClass::General => self.config.general_max,
        };
        RateDecision {
            allowed: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            reset_at: window.reset_at,
            retry_after: window.retry_after,
        }
    }
}

/// Failed logins per account (see the module doc).
pub struct LoginThrottle {
    counters: Counters,
    max_failures: u64,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(shared: Arc<dyn Cache>, max_failures: u64, window: Duration) -> Self {
        LoginThrottle { counters: Counters::new(shared), max_failures, window }
    }

    /// `Some(retry_after)` while `email` is blocked.
    pub async fn blocked(&self, email: &str, now_unix: u64) -> Option<Duration> {
        let window = Window::at(self.window, now_unix);
        let blocked = self.counters.is_set(&Self::key("lb", email, &window)).await;
        blocked.then_some(window.retry_after)
    }

    /// Counts a failed login for `email`; the one that reaches the maximum
    /// blocks the email until the window ends.
    pub async fn record_failure(&self, email: &str, now_unix: u64) {
        let window = Window::at(self.window, now_unix);
        let failures = self.counters.increment(&Self::key("lf", email, &window), window.ttl).await;
        if failures >= self.max_failures {
            self.counters.set(&Self::key("lb", email, &window), window.ttl).await;
        }
    }

    /// The email is hashed: addresses never sit in the cache in clear.
    fn key(kind: &str, email: &str, window: &Window) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, email.as_bytes());
        let hex: String = digest.as_ref()[..16].iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{kind}:{}:{hex}", window.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheError;
    use async_trait::async_trait;

    fn limiter(cache: Arc<dyn Cache>) -> RateLimiter {
        RateLimiter::new(cache, RateLimitConfig { window: Duration::from_secs(60), general_max: 3, auth_max: 2 })
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
    async fn an_email_is_blocked_after_its_failures_until_the_window_ends() {
        let throttle = LoginThrottle::new(Arc::new(MemoryCache::new()), 3, Duration::from_secs(900));
        let start = 9_000; // the start of a 900 s window
        for _ in 0..2 {
            throttle.record_failure("ada@example.com", start).await;
        }
        assert_eq!(throttle.blocked("ada@example.com", start).await, None);
        throttle.record_failure("ada@example.com", start + 100).await;
        assert_eq!(throttle.blocked("ada@example.com", start + 100).await, Some(Duration::from_secs(800)));
        assert_eq!(throttle.blocked("bob@example.com", start + 100).await, None, "other emails are not blocked");
        assert_eq!(throttle.blocked("ada@example.com", start + 900).await, None, "a new window");
    }

    #[tokio::test]
    async fn with_the_cache_down_failed_logins_still_block_in_memory() {
        let throttle = LoginThrottle::new(Arc::new(DownCache), 2, Duration::from_secs(900));
        throttle.record_failure("ada@example.com", 0).await;
        throttle.record_failure("ada@example.com", 0).await;
        assert!(throttle.blocked("ada@example.com", 1).await.is_some());
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

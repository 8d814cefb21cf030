//! The store and the cache behind their deadline and breaker: one layer
//! around each port, so no handler times or guards a call itself.
//!
//! - Store: a call refused by the open breaker is [`StoreError::BreakerOpen`]
//!   (503 with the cool-down as `Retry-After`, no call made); a call that
//!   runs out of the request's time is [`StoreError::Unavailable`] (503),
//!   and its outcome is unknown: a write may still land, which the order
//!   path's `Idempotency-Key` makes safe to retry.
//! - Cache: a refused or timed-out call is a [`CacheError`], which every
//!   caller already survives by going to the store; each call may take at
//!   most `CACHE_TIMEOUT_MS` of the request's time.
//!
//! Only failures that say the dependency is unwell trip a breaker:
//! unreachable, throttled, timed out. A missing record, a taken email or a
//! conflict is the store working.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::breaker::CircuitBreaker;
use super::deadline::bounded;
use crate::cache::{Cache, CacheError};
use crate::domain::payment::StockMove;
use crate::domain::{
    Cart, Category, Email, Order, OrderId, OrderStatus, Product, ProductId, ProductPage, ProductQuery,
};
use crate::domain::{Role, User, UserId, UserStatus};
use crate::events::{Actor, Event};
use crate::metrics::{self, Dependency};
use crate::store::{
    CartStore, CatalogStore, DeliveryPage, EventPage, EventQuery, EventStore, IdempotencyClaim, IdempotencyTicket,
    OrderPage, OrderStore, ProductUpdate, Store, StoreError, TokenStanding, UserPage, UserQuery, UserStore,
    WebhookStore,
};
use crate::webhooks::{DeliveryAttempt, Webhook, WebhookSecret};

/// Store calls that failed since the process started, by kind (what
/// `shop-local`'s /metrics shows): unavailable (unreachable, throttled,
/// timed out, past the deadline) and internal (an error answer, a record
/// that would not read back).
static STORE_UNAVAILABLE: AtomicU64 = AtomicU64::new(0);
static STORE_INTERNAL: AtomicU64 = AtomicU64::new(0);

/// Counts of failed store calls since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreFailures {
    pub unavailable: u64,
    pub internal: u64,
}

/// The failed store calls of this process so far, all its stores together.
pub fn store_failures() -> StoreFailures {
    StoreFailures {
        unavailable: STORE_UNAVAILABLE.load(Ordering::Relaxed),
        internal: STORE_INTERNAL.load(Ordering::Relaxed),
    }
}

/// A store whose every call is bounded by the request's deadline and
/// guarded by the store's breaker.
pub struct GuardedStore {
    inner: Arc<dyn Store>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedStore {
    pub fn new(inner: Arc<dyn Store>, breaker: Arc<CircuitBreaker>) -> Self {
        GuardedStore { inner, breaker }
    }

    async fn guard<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        if !super::gate::store_admitted().await {
            // The request was refused by its rate limit: its answer is the
            // 429, whatever this returns.
            return Err(StoreError::Unavailable("the request was rate limited".into()));
        }
        let permit = self.breaker.admit().map_err(|open| StoreError::BreakerOpen(open.retry_after))?;
        let started = std::time::Instant::now();
        let answered = bounded(None, call).await;
        metrics::waited(Dependency::Store, started.elapsed());
        match answered {
            Err(_) => {
                permit.failed();
                STORE_UNAVAILABLE.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Unavailable("the request's deadline passed during a store call".into()))
            }
            Ok(Err(err @ StoreError::Unavailable(_))) => {
                permit.failed();
                STORE_UNAVAILABLE.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
            Ok(Err(err @ (StoreError::Internal(_) | StoreError::Contended(_)))) => {
                // The store answered (an error, or one key too busy): not a
                // reason to open the breaker for every other key.
                permit.succeeded();
                STORE_INTERNAL.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
            Ok(answered) => {
                permit.succeeded();
                answered
            }
        }
    }
}

#[async_trait]
impl UserStore for GuardedStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.guard(self.inner.create_user(user)).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.guard(self.inner.user_by_id(id)).await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.guard(self.inner.user_by_email(email)).await
    }

    async fn update_user(&self, user: &User, previous: &User) -> Result<(), StoreError> {
        self.guard(self.inner.update_user(user, previous)).await
    }

    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.guard(self.inner.revoke_token(jti, expires_at)).await
    }

    async fn token_standing(&self, user: UserId, jti: &str) -> Result<TokenStanding, StoreError> {
        self.guard(self.inner.token_standing(user, jti)).await
    }

    async fn change_user_access(
        &self,
        current: &User,
        role: Role,
        status: UserStatus,
        at: OffsetDateTime,
    ) -> Result<User, StoreError> {
        self.guard(self.inner.change_user_access(current, role, status, at)).await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        self.guard(self.inner.list_users(query)).await
    }
}

#[async_trait]
impl CatalogStore for GuardedStore {
    async fn create_category(&self, category: &Category) -> Result<(), StoreError> {
        self.guard(self.inner.create_category(category)).await
    }

    async fn categories(&self) -> Result<Vec<Category>, StoreError> {
        self.guard(self.inner.categories()).await
    }

    async fn category_by_key(&self, key: &str) -> Result<Option<Category>, StoreError> {
        self.guard(self.inner.category_by_key(key)).await
    }

    async fn create_product(&self, product: &Product) -> Result<(), StoreError> {
        self.guard(self.inner.create_product(product)).await
    }

    async fn product_by_id(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        self.guard(self.inner.product_by_id(id)).await
    }

    async fn update_product(&self, update: &ProductUpdate) -> Result<Product, StoreError> {
        self.guard(self.inner.update_product(update)).await
    }

    async fn delete_product(&self, id: ProductId) -> Result<(), StoreError> {
        self.guard(self.inner.delete_product(id)).await
    }

    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError> {
        self.guard(self.inner.list_products(query)).await
    }

    /// An operator's command, minutes long on a big catalog: no request
    /// deadline applies.
    async fn rebuild_search_index(&self) -> Result<u64, StoreError> {
        self.inner.rebuild_search_index().await
    }
}

#[async_trait]
impl OrderStore for GuardedStore {
    async fn claim_idempotency_key(
        &self,
        user_id: UserId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.guard(self.inner.claim_idempotency_key(user_id, key, fingerprint, now)).await
    }

    async fn release_idempotency_key(&self, ticket: &IdempotencyTicket) -> Result<(), StoreError> {
        self.guard(self.inner.release_idempotency_key(ticket)).await
    }

    async fn place_order(
        &self,
        order: &Order,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError> {
        self.guard(self.inner.place_order(order, completion)).await
    }

    async fn order_by_id(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.guard(self.inner.order_by_id(id)).await
    }

    async fn orders_of_user(
        &self,
        user_id: UserId,
        status: Option<OrderStatus>,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        self.guard(self.inner.orders_of_user(user_id, status, limit, after)).await
    }

    async fn orders_by_status(
        &self,
        status: OrderStatus,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        self.guard(self.inner.orders_by_status(status, limit, after)).await
    }

    async fn update_order(
        &self,
        current: &Order,
        next: &Order,
        stock: StockMove,
        by: &Actor,
    ) -> Result<(), StoreError> {
        self.guard(self.inner.update_order(current, next, stock, by)).await
    }

    async fn record_payment_event(&self, id: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        self.guard(self.inner.record_payment_event(id, expires_at)).await
    }

    async fn payment_event_seen(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.guard(self.inner.payment_event_seen(id, now)).await
    }

    async fn pending_orders_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError> {
        self.guard(self.inner.pending_orders_before(cutoff, limit)).await
    }
}

#[async_trait]
impl CartStore for GuardedStore {
    async fn cart(&self, user_id: UserId, now: OffsetDateTime) -> Result<Option<Cart>, StoreError> {
        self.guard(self.inner.cart(user_id, now)).await
    }

    async fn save_cart(&self, cart: &Cart, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.guard(self.inner.save_cart(cart, expires_at)).await
    }

    async fn delete_cart(&self, user_id: UserId, version: Option<u64>) -> Result<(), StoreError> {
        self.guard(self.inner.delete_cart(user_id, version)).await
    }

    async fn check_out(
        &self,
        order: &Order,
        cart_version: u64,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError> {
        self.guard(self.inner.check_out(order, cart_version, completion)).await
    }

    async fn sweep_expired_carts(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError> {
        self.guard(self.inner.sweep_expired_carts(now, limit)).await
    }
}

#[async_trait]
impl EventStore for GuardedStore {
    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        self.guard(self.inner.record_event(event)).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        self.guard(self.inner.list_events(query)).await
    }
}

#[async_trait]
impl WebhookStore for GuardedStore {
    async fn create_webhook(&self, webhook: &Webhook, limit: usize) -> Result<(), StoreError> {
        self.guard(self.inner.create_webhook(webhook, limit)).await
    }

    async fn webhook(&self, id: uuid::Uuid) -> Result<Option<Webhook>, StoreError> {
        self.guard(self.inner.webhook(id)).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.guard(self.inner.webhooks()).await
    }

    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        self.guard(self.inner.delete_webhook(id)).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: uuid::Uuid,
        secret: &WebhookSecret,
        previous_until: OffsetDateTime,
    ) -> Result<Webhook, StoreError> {
        self.guard(self.inner.rotate_webhook_secret(id, secret, previous_until)).await
    }

    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.guard(self.inner.record_delivery(attempt)).await
    }

    async fn deliveries(
        &self,
        webhook: uuid::Uuid,
        limit: usize,
        after: Option<uuid::Uuid>,
    ) -> Result<DeliveryPage, StoreError> {
        self.guard(self.inner.deliveries(webhook, limit, after)).await
    }
}

#[async_trait]
impl Store for GuardedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.guard(self.inner.ping()).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn change_feed(&self) -> Option<&dyn crate::store::ChangeFeed> {
        self.inner.change_feed()
    }
}

/// A cache whose every call takes at most `timeout` (and never more than
/// the request has left), guarded by the cache's breaker.
pub struct GuardedCache {
    inner: Arc<dyn Cache>,
    /// `None` for the change feed's invalidations (see [`GuardedCache::timed`]).
    breaker: Option<Arc<CircuitBreaker>>,
    timeout: Duration,
}

impl GuardedCache {
    pub fn new(inner: Arc<dyn Cache>, breaker: Arc<CircuitBreaker>, timeout: Duration) -> Self {
        GuardedCache { inner, breaker: Some(breaker), timeout }
    }

    /// Bounded by `timeout` but behind no breaker: what the change feed's
    /// cache invalidation writes through. When the cache comes back, the
    /// readers' breaker keeps them on the store for its cool-down (5 s),
    /// while the invalidation, retried every second at most, reaches the
    /// cache at once: the stale entries are gone before a reader can see
    /// them again.
    pub fn timed(inner: Arc<dyn Cache>, timeout: Duration) -> Self {
        GuardedCache { inner, breaker: None, timeout }
    }

    async fn guard<T>(&self, call: impl Future<Output = Result<T, CacheError>>) -> Result<T, CacheError> {
        let permit = match &self.breaker {
            Some(breaker) => Some(breaker.admit().map_err(|_| CacheError("circuit breaker open".into()))?),
            None => None,
        };
        let started = std::time::Instant::now();
        let result = match bounded(Some(self.timeout), call).await {
            Err(_) => Err(CacheError("timed out".into())),
            Ok(answered) => answered,
        };
        metrics::waited(Dependency::Cache, started.elapsed());
        if let Some(permit) = permit {
            if result.is_ok() {
                permit.succeeded();
            } else {
                permit.failed();
            }
        }
        result
    }
}

#[async_trait]
impl Cache for GuardedCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.guard(self.inner.get(key)).await
    }

    async fn get_two(&self, first: &str, second: &str) -> Result<[Option<Vec<u8>>; 2], CacheError> {
        self.guard(self.inner.get_two(first, second)).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.guard(self.inner.set(key, value, ttl)).await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.guard(self.inner.delete(key)).await
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        self.guard(self.inner.increment(key, ttl)).await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.guard(self.inner.ping()).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

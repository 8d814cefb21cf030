//! The store port: the access patterns the handlers need, and nothing more.
//!
//! Two adapters implement it: [`dynamodb::DynamoStore`] (one table, AWS or
//! DynamoDB Local) and [`embedded::EmbeddedStore`] (redb, ACID, no server).
//! Uniqueness (of a user's email) is enforced by the store inside one atomic
//! write, never by a read before a write. `tests/store_contract.rs` runs one
//! suite against both.

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::config::{Config, StoreKind};
use crate::domain::UserStatus;
use crate::domain::payment::StockMove;
use crate::domain::{Cart, CategoryName, Description, Money, Order, OrderId, OrderStatus, ProductName};
use crate::domain::{Category, Email, Product, ProductId, ProductPage, ProductQuery, Role, StockChange, User, UserId};
use crate::events::{Actor, Event, EventType};
use crate::webhooks::{DeliveryAttempt, Webhook, WebhookSecret};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user already has this email.
    #[error("email already registered")]
    EmailTaken,
    /// Another category already has this name (case-insensitively).
    #[error("category already exists")]
    CategoryTaken,
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// These products have less stock than the change needs; nothing was
    /// written.
    #[error("insufficient stock")]
    InsufficientStock(Vec<ProductId>),
    /// An adjustment would take the stock above [`crate::domain::catalog::MAX_STOCK`];
    /// nothing was written.
    #[error("stock above the maximum")]
    StockAboveMaximum,
    /// The store cannot be reached, is throttling, or did not answer in the
    /// request's time: a 503, worth a retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// One key is too busy: its transactions kept conflicting, or its
    /// partition is throttled (DynamoDB's key-range throttling). The store
    /// itself answers, so the breaker does not count it: a 429 for that
    /// request, back-pressure on that key only. Nothing was written.
    #[error("too busy: {0}")]
    Contended(String),
    /// The store's circuit breaker is open: no call was made. A 503 whose
    /// `Retry-After` is what is left of the cool-down.
    #[error("store unavailable: circuit breaker open")]
    BreakerOpen(std::time::Duration),
    /// The order is no longer in the status the change started from: a
    /// concurrent change won.
    #[error("order status changed concurrently")]
    StatusChanged,
    /// The user's password changed since the user was read: a write based
    /// on that read would bring the old password back.
    #[error("user changed concurrently")]
    UserChanged,
    /// The change would leave no active admin; nothing was written.
    #[error("the last active admin cannot be demoted or disabled")]
    LastAdmin,
    /// As many as allowed exist already (webhook subscriptions); nothing
    /// was written.
    #[error("limit of {0} reached")]
    LimitReached(usize),
    /// The cart is no longer at the version the change was based on: a
    /// concurrent edit or checkout won; nothing was written.
    #[error("cart changed concurrently")]
    CartChanged,
    /// A stored record cannot be read back, or another unexpected failure.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Users, their unique emails, and revoked tokens.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Saves a new user; [`StoreError::EmailTaken`] when the email (already
    /// lower-cased) belongs to someone, decided atomically with the write.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Replaces `previous`, the user as the caller read it, with `user`.
    /// When the email changed, the old one is released and the new one
    /// claimed in the same atomic write ([`StoreError::EmailTaken`] if
    /// someone holds it); [`StoreError::NotFound`] when the user does not
    /// exist; [`StoreError::UserChanged`] when the stored session version or
    /// role is no longer `previous`'s, so a write racing a password change,
    /// a disabling or a role change can never undo it.
    async fn update_user(&self, user: &User, previous: &User) -> Result<(), StoreError>;

    /// Refuses the token `jti` until `expires_at`, after which the token is
    /// dead anyway and the record may be dropped.
    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), StoreError>;

    /// What the store says of a token `jti` presented for `user`: revoked
    /// by a logout, and the user's session version, role and status now.
    /// One consistent look, made for every authenticated request.
    async fn token_standing(&self, user: UserId, jti: &str) -> Result<TokenStanding, StoreError>;

    /// Sets the role and status of `current` (the user as the caller read
    /// it) and returns the user as stored after it. Compare-and-set:
    /// [`StoreError::UserChanged`] when the stored role or status is no
    /// longer `current`'s, [`StoreError::NotFound`] when the user is gone,
    /// [`StoreError::LastAdmin`] when no active admin would remain,
    /// decided atomically with the write. Disabling also moves the session
    /// version on, so every token issued before it is dead for good.
    async fn change_user_access(
        &self,
        current: &User,
        role: Role,
        status: UserStatus,
        at: OffsetDateTime,
    ) -> Result<User, StoreError>;

    /// One page of users, newest first, passing `query`'s filters.
    async fn list_users(&self, query: &UserQuery) -> Result<UserPage, StoreError>;
}

/// The stored facts a signed, unexpired token is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenStanding {
    /// The token was revoked by a logout.
    pub revoked: bool,
    /// The user now; `None` when the user no longer exists.
    pub user: Option<UserStanding>,
}

/// What a request's rights are decided on: never the token's claims alone,
/// so a role change or a disabling takes effect on the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserStanding {
    pub session_version: u32,
    pub role: Role,
    pub status: UserStatus,
}

impl From<&User> for UserStanding {
    fn from(user: &User) -> Self {
        UserStanding { session_version: user.session_version, role: user.role, status: user.status }
    }
}

/// Filters of the admin's user listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Lower-cased; matches the start of the email or of the name.
    pub prefix: Option<String>,
    pub role: Option<Role>,
    pub limit: usize,
    /// The last user of the previous page.
    pub after: Option<UserId>,
}

impl UserQuery {
    pub fn matches(&self, user: &User) -> bool {
        let prefix_ok = self.prefix.as_deref().is_none_or(|prefix| {
            user.email.as_str().starts_with(prefix) || user.name.as_str().to_lowercase().starts_with(prefix)
        });
        prefix_ok && self.role.is_none_or(|role| user.role == role)
    }
}

/// One page of users, newest first.
#[derive(Debug, Default)]
pub struct UserPage {
    pub items: Vec<User>,
    /// The last user of this page, when there is another page.
    pub next: Option<UserId>,
}

/// The new values of an updated product. Everything but the stock is
/// replaced; the stock changes as [`StockChange`] says, atomically with any
/// concurrent order.
#[derive(Clone, Debug)]
pub struct ProductUpdate {
    pub id: ProductId,
    pub name: ProductName,
    pub description: Description,
    pub price: Money,
    pub category: CategoryName,
    pub stock: StockChange,
    /// How many counters hold the stock after the update; a change moves
    /// the units, their total unchanged but for `stock`.
    pub stock_counters: u16,
    pub updated_at: OffsetDateTime,
}

/// Categories and products.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// [`StoreError::CategoryTaken`] when the name's key is taken, decided
    /// atomically with the write.
    async fn create_category(&self, category: &Category) -> Result<(), StoreError>;

    /// Every category, by name.
    async fn categories(&self) -> Result<Vec<Category>, StoreError>;

    async fn category_by_key(&self, key: &str) -> Result<Option<Category>, StoreError>;

    async fn create_product(&self, product: &Product) -> Result<(), StoreError>;

    async fn product_by_id(&self, id: ProductId) -> Result<Option<Product>, StoreError>;

    /// Applies `update` and returns the product as stored after it;
    /// [`StoreError::NotFound`], or [`StoreError::InsufficientStock`] /
    /// [`StoreError::StockAboveMaximum`] when an adjustment would take the
    /// stock below zero / above the maximum an admin may set.
    async fn update_product(&self, update: &ProductUpdate) -> Result<Product, StoreError>;

    /// [`StoreError::NotFound`] when there is no such product.
    async fn delete_product(&self, id: ProductId) -> Result<(), StoreError>;

    /// One page of products passing `query`'s filters: newest first, or
    /// cheapest first within a category. Paging through with each page's
    /// `next` yields every matching product exactly once. A search reads
    /// the search index and may end a page early, with a `next`, once it
    /// examined [`crate::domain::search::MAX_EXAMINED`] entries it skipped.
    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError>;

    /// Writes every product's search index entries again and removes any
    /// entry no product has (`shop-local reindex`); answers how many
    /// products it indexed.
    async fn rebuild_search_index(&self) -> Result<u64, StoreError>;
}

/// How long a completed request's response is replayed for its key.
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(24);
/// How long a claim on a key holds before another request may take it
/// over: covers a request that died between claiming and placing.
pub const IDEMPOTENCY_LEASE: time::Duration = time::Duration::seconds(30);

/// A request's hold on an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyTicket {
    pub user_id: UserId,
    pub key: String,
    /// Identifies this claim, so only its holder completes or releases it.
    pub token: String,
}

/// What claiming an `Idempotency-Key` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is this request's: place the order with the ticket.
    Acquired(IdempotencyTicket),
    /// A request with this key and the same body completed: its response.
    Replay { status: u16, body: String },
    /// The key was used with a different request body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// One page of orders, newest first.
#[derive(Debug, Default)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// The last order of this page, when there is another page.
    pub next: Option<OrderId>,
}

/// Orders, with stock reserved and returned atomically, and idempotency
/// records.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Claims `key` for `user_id`'s request with body `fingerprint`, or
    /// reports what an earlier request with the key left.
    async fn claim_idempotency_key(
        &self,
        user_id: UserId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Gives the key up after a request that failed, so a retry runs anew.
    async fn release_idempotency_key(&self, ticket: &IdempotencyTicket) -> Result<(), StoreError>;

    /// In one atomic write: takes every line's quantity from its product's
    /// stock (each conditioned on enough stock), saves the order, and, with
    /// a ticket, completes its idempotency record with `response_body`.
    /// [`StoreError::InsufficientStock`] names every short product; then
    /// nothing is written.
    async fn place_order(
        &self,
        order: &Order,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError>;

    async fn order_by_id(&self, id: OrderId) -> Result<Option<Order>, StoreError>;

    /// A user's orders, newest first, optionally of one status.
    async fn orders_of_user(
        &self,
        user_id: UserId,
        status: Option<OrderStatus>,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError>;

    /// Every user's orders in `status`, newest first (admin).
    async fn orders_by_status(
        &self,
        status: OrderStatus,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError>;

    /// Replaces `current`, the order as the caller read it, with `next`, if
    /// the stored order's status and payment are still `current`'s
    /// ([`StoreError::StatusChanged`] otherwise; [`StoreError::NotFound`]
    /// when it is gone), and records `by` as who changed it. `stock` is
    /// what every line's units do in the same atomic write: go back
    /// ([`StockMove::Release`]; lines whose product was deleted since are
    /// skipped), are taken again ([`StockMove::Reserve`], each conditioned
    /// on enough stock: [`StoreError::InsufficientStock`] names every short
    /// product and nothing is written), or stay. So racing changes (a
    /// cancel, the expiry, a payment) are one compare-and-set: exactly one
    /// wins, and stock moves once. The caller checks the workflow.
    async fn update_order(&self, current: &Order, next: &Order, stock: StockMove, by: &Actor)
    -> Result<(), StoreError>;

    /// Moves `order` from its current status to `to` with
    /// [`OrderStore::update_order`]: cancelling and expiring return every
    /// line's units to stock in the same write.
    async fn change_order_status(
        &self,
        order: &Order,
        to: OrderStatus,
        at: OffsetDateTime,
        by: &Actor,
    ) -> Result<Order, StoreError> {
        let next = Order { status: to, updated_at: at, ..order.clone() };
        let stock = if to.releases_stock() { StockMove::Release } else { StockMove::Keep };
        self.update_order(order, &next, stock, by).await?;
        Ok(next)
    }

    /// Records that the payment provider's event `id` was applied, kept
    /// until `expires_at` (the provider stops retrying long before); false
    /// when it was recorded already, decided atomically with the write.
    async fn record_payment_event(&self, id: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError>;

    /// True when the provider's event `id` was recorded and has not expired
    /// at `now`.
    async fn payment_event_seen(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Up to `limit` pending orders placed before `cutoff`, oldest first,
    /// read through the status index (never a scan): what the reservation
    /// expiry moves to `expired`.
    async fn pending_orders_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError>;
}

/// Carts, one per user, and checkout: a cart turned into an order.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// The user's cart as stored, read strongly; `None` when there is none,
    /// or when it expired at or before `now` (DynamoDB deletes expired
    /// items lazily, so the read checks too).
    async fn cart(&self, user_id: UserId, now: OffsetDateTime) -> Result<Option<Cart>, StoreError>;

    /// Stores `cart` (its version already moved on) if the stored cart is
    /// still at `cart.version - 1` (absent or expired for version 1),
    /// [`StoreError::CartChanged`] otherwise. The cart expires at
    /// `expires_at` unless written again.
    async fn save_cart(&self, cart: &Cart, expires_at: OffsetDateTime) -> Result<(), StoreError>;

    /// Deletes the user's cart; with `version`, only if the stored one is
    /// at it ([`StoreError::CartChanged`] otherwise). No cart is not an
    /// error.
    async fn delete_cart(&self, user_id: UserId, version: Option<u64>) -> Result<(), StoreError>;

    /// Checkout, in one atomic write: everything
    /// [`OrderStore::place_order`] does for `order`, and the removal of its
    /// owner's cart, conditioned on the cart still being at `cart_version`.
    /// [`StoreError::CartChanged`] when the cart changed or is gone (then
    /// nothing is written, whatever the stock), else
    /// [`StoreError::InsufficientStock`] naming every short product.
    async fn check_out(
        &self,
        order: &Order,
        cart_version: u64,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError>;

    /// Deletes up to `limit` carts that expired before `now`; how many. The
    /// embedded store's sweep; DynamoDB's TTL does it there (0).
    async fn sweep_expired_carts(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError>;
}

/// Filters of the admin event log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub limit: usize,
    /// The position of the last event of the previous page.
    pub after: Option<String>,
}

/// One page of the event log, newest first.
#[derive(Debug, Default)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The position of this page's last event, when there is another page.
    pub next: Option<String>,
}

/// The admin event log, written by its consumer of the change feed.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Keeps `event` for [`crate::events::LOG_RETENTION`] after it
    /// occurred. Idempotent by event id: a redelivered event is stored once.
    async fn record_event(&self, event: &Event) -> Result<(), StoreError>;

    /// One page of the kept events, newest first (by `occurredAt`, then id).
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError>;
}

/// One page of a subscription's delivery attempts, newest first.
#[derive(Debug, Default)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryAttempt>,
    /// The id of this page's last attempt, when there is another page.
    pub next: Option<uuid::Uuid>,
}

/// Webhook subscriptions and their delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Saves a new subscription unless `limit` exist already
    /// ([`StoreError::LimitReached`]), decided atomically with the write.
    async fn create_webhook(&self, webhook: &Webhook, limit: usize) -> Result<(), StoreError>;

    async fn webhook(&self, id: uuid::Uuid) -> Result<Option<Webhook>, StoreError>;

    /// Every subscription, newest first (there are at most
    /// [`crate::webhooks::MAX_WEBHOOKS`]).
    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;

    /// [`StoreError::NotFound`] when there is no such subscription.
    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<(), StoreError>;

    /// Makes `secret` the subscription's secret, the one it replaces
    /// signing beside it until `previous_until`, in one atomic write; the
    /// subscription as stored after it, or [`StoreError::NotFound`].
    async fn rotate_webhook_secret(
        &self,
        id: uuid::Uuid,
        secret: &WebhookSecret,
        previous_until: OffsetDateTime,
    ) -> Result<Webhook, StoreError>;

    /// Logs one attempt, kept [`crate::webhooks::DELIVERY_LOG_RETENTION`].
    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError>;

    /// One page of the subscription's attempts, newest first, after the
    /// attempt `after`.
    async fn deliveries(
        &self,
        webhook: uuid::Uuid,
        limit: usize,
        after: Option<uuid::Uuid>,
    ) -> Result<DeliveryPage, StoreError>;
}

/// The log position of an event: sorts as text in (`occurredAt`, id)
/// order, so both adapters page by the same cursor.
pub fn event_position(event: &Event) -> String {
    format!("{:020}#{}", event.occurred_at.unix_timestamp_nanos().max(0), event.id)
}

/// The lowest time-ordered id text of `at`'s millisecond: every UUID v7
/// made before `at` sorts below it.
pub fn time_ordered_bound(at: OffsetDateTime) -> String {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// Everything the API stores.
#[async_trait]
pub trait Store: UserStore + CatalogStore + OrderStore + CartStore + EventStore + WebhookStore {
    /// A cheap round trip proving the store answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The adapter's name, for logs and `/health`.
    fn kind(&self) -> &'static str;

    /// The store's own change feed, when it keeps one in process (the
    /// embedded store's outbox). DynamoDB's is the table's stream, read by
    /// Lambda or by `shop-local`'s poller.
    fn change_feed(&self) -> Option<&dyn ChangeFeed> {
        None
    }
}

/// A change feed kept in the store: every change, in write order, until
/// it is acknowledged.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Up to `limit` unacknowledged changes after the change `after` (from
    /// the first when `None`), oldest first.
    async fn changes_after(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<crate::events::Change>, StoreError>;

    /// Forgets the changes `ids`: their events reached every consumer.
    async fn acknowledge(&self, ids: Vec<String>) -> Result<(), StoreError>;

    /// Resolves after a change was written (or at once if one was written
    /// since the last call).
    async fn wait_for_changes(&self);
}

/// Builds the adapter the configuration names.
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match config.store {
        #[cfg(feature = "embedded")]
        StoreKind::Embedded => {
            let store = embedded::EmbeddedStore::open(&config.data_dir)?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "embedded"))]
        StoreKind::Embedded => {
            Err(StoreError::Internal("this binary was built without the embedded store: set STORE=dynamodb".into()))
        }
        StoreKind::DynamoDb => {
            let store = dynamodb::DynamoStore::connect(config).await;
            Ok(Arc::new(store))
        }
    }
}

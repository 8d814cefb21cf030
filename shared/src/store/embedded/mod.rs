//! The embedded store: one redb file under `DATA_DIR`.
//!
//! redb gives serialisable write transactions, so each multi-record change
//! (a user and its email claim) is one transaction, as it is one
//! `TransactWriteItems` on DynamoDB. Records are JSON; redb calls are
//! blocking and run on tokio's blocking pool. Every write of an entity
//! also adds its change to the outbox in the same transaction (`outbox`).

use std::path::Path;
use std::sync::Arc;

mod carts;
mod catalog;
mod event_log;
mod orders;
mod outbox;
mod records;
mod search;
mod users;
mod webhooks;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition};

use super::{Store, StoreError};

/// User id -> JSON user record.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Lower-cased email -> user id: the uniqueness claim.
const USER_EMAILS: TableDefinition<&str, &str> = TableDefinition::new("user_emails");
/// Token id -> expiry (unix seconds).
const REVOKED_TOKENS: TableDefinition<&str, i64> = TableDefinition::new("revoked_tokens");
/// Category key (lower-cased name) -> JSON category record.
const CATEGORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("categories");
/// Product id -> JSON product record. UUID v7 ids: key order is creation
/// order, so a reverse scan is "newest first".
const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products");
/// (category key, price in cents, product id): the "category, cheapest
/// first, price range" index.
const PRODUCTS_BY_CATEGORY: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("products_by_category");
/// (index key, product id): the search index, newest first in reverse key
/// order (see `search`).
const SEARCH_NEWEST: TableDefinition<(&str, &str), ()> = TableDefinition::new("search_newest");
/// (category key, index key, price in cents, product id): the search index
/// within a category, cheapest first.
const SEARCH_BY_CATEGORY: TableDefinition<(&str, &str, u64, &str), ()> = TableDefinition::new("search_by_category");
/// Order id -> JSON order record.
const ORDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("orders");
/// (user id, order id): a user's orders, newest last in key order.
const ORDERS_BY_USER: TableDefinition<(&str, &str), ()> = TableDefinition::new("orders_by_user");
/// (status, order id): every order in one status.
const ORDERS_BY_STATUS: TableDefinition<(&str, &str), ()> = TableDefinition::new("orders_by_status");
/// "<user id> <key>" -> JSON idempotency record.
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// Payment provider event id -> unix seconds until which it is kept: the
/// events already applied.
const PAYMENT_EVENTS: TableDefinition<&str, i64> = TableDefinition::new("payment_events");

/// User id -> JSON cart record.
const CARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("carts");
/// (expiry in unix seconds, user id): what the cart sweep walks, oldest
/// first, without reading every cart.
const CARTS_BY_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("carts_by_expiry");

/// Change id (UUID v7) -> JSON outbox entry: the change feed.
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
/// Log position -> JSON event: the admin event log.
const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
/// (event type, log position): the log of one type.
const EVENTS_BY_TYPE: TableDefinition<(&str, &str), ()> = TableDefinition::new("events_by_type");
/// Event id -> log position: an event is logged once.
const EVENT_IDS: TableDefinition<&str, &str> = TableDefinition::new("event_ids");
/// Webhook id (UUID v7) -> JSON subscription, secrets included.
const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// (webhook id, attempt id) -> JSON delivery attempt: a subscription's
/// log, oldest first in key order.
const WEBHOOK_DELIVERIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("webhook_deliveries");

const FILE_NAME: &str = "shop.redb";

/// The redb-backed store. Cloning shares the database.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Wakes the outbox drain after a write that recorded changes.
    changed: Arc<tokio::sync::Notify>,
}

impl EmbeddedStore {
    /// Opens (or creates) `DATA_DIR/shop.redb`, creating every table, so
    /// that later read transactions never meet a missing table.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Internal(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(internal)?;
        txn.open_table(USERS).map_err(internal)?;
        txn.open_table(USER_EMAILS).map_err(internal)?;
        txn.open_table(REVOKED_TOKENS).map_err(internal)?;
        txn.open_table(CATEGORIES).map_err(internal)?;
        txn.open_table(PRODUCTS).map_err(internal)?;
        txn.open_table(PRODUCTS_BY_CATEGORY).map_err(internal)?;
        txn.open_table(SEARCH_NEWEST).map_err(internal)?;
        txn.open_table(SEARCH_BY_CATEGORY).map_err(internal)?;
        txn.open_table(ORDERS).map_err(internal)?;
        txn.open_table(ORDERS_BY_USER).map_err(internal)?;
        txn.open_table(ORDERS_BY_STATUS).map_err(internal)?;
        txn.open_table(IDEMPOTENCY).map_err(internal)?;
        txn.open_table(CARTS).map_err(internal)?;
        txn.open_table(CARTS_BY_EXPIRY).map_err(internal)?;
        txn.open_table(PAYMENT_EVENTS).map_err(internal)?;
        txn.open_table(OUTBOX).map_err(internal)?;
        txn.open_table(EVENTS).map_err(internal)?;
        txn.open_table(EVENTS_BY_TYPE).map_err(internal)?;
        txn.open_table(EVENT_IDS).map_err(internal)?;
        txn.open_table(WEBHOOKS).map_err(internal)?;
        txn.open_table(WEBHOOK_DELIVERIES).map_err(internal)?;
        // A store written before the search index existed gets it now.
        if search::missing(&txn)? {
            search::rebuild(&txn)?;
        }
        txn.commit().map_err(internal)?;
        Ok(EmbeddedStore { db: Arc::new(db), changed: Arc::new(tokio::sync::Notify::new()) })
    }

    /// Runs blocking redb work off the async worker threads.
    pub(super) async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }

    /// [`Self::blocking`] for a write that records changes: wakes the
    /// outbox drain once it committed.
    pub(super) async fn writing<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let result = self.blocking(work).await;
        if result.is_ok() {
            self.changed.notify_one();
        }
        result
    }
}

pub(super) fn internal(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Internal(err.into().to_string())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| db.begin_read().map(|_| ()).map_err(internal)).await
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn change_feed(&self) -> Option<&dyn super::ChangeFeed> {
        Some(self)
    }
}

//! The embedded store's change feed: every write of a user, category,
//! product or order adds an outbox entry (old and new record) in the same
//! redb transaction, so no change exists without its entry. `shop-local`
//! drains the entries through the same mapping as the DynamoDB stream, and
//! deletes each only once every consumer has its events: what was not
//! delivered before a crash is delivered after the restart.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableDatabase, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::records::{CategoryRecord, OrderRecord, ProductRecord, UserRecord};
use super::{EmbeddedStore, OUTBOX, internal};
use crate::domain::{Category, Order, Product, User};
use crate::events::{Actor, Change, Entity};
use crate::store::{ChangeFeed, StoreError};

/// One outbox entry: what was written, before and after.
#[derive(Serialize, Deserialize)]
struct OutboxRecord {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    old: Option<StoredEntity>,
    new: Option<StoredEntity>,
}

/// A record as the store keeps it, tagged with its kind.
#[derive(Serialize, Deserialize)]
struct StoredEntity {
    kind: String,
    record: Value,
}

/// A record to put in the outbox, borrowed from the write that makes it.
pub(super) enum Written<'a> {
    User(&'a User),
    Category(&'a Category),
    Product(&'a Product),
    Order(&'a Order, Option<&'a Actor>),
}

impl Written<'_> {
    fn stored(&self) -> Result<StoredEntity, StoreError> {
        let (kind, bytes) = match self {
            Written::User(user) => ("user", UserRecord::from(*user).to_bytes()?),
            Written::Category(category) => ("category", CategoryRecord::to_bytes(category)?),
            Written::Product(product) => ("product", ProductRecord::to_bytes(product)?),
            Written::Order(order, by) => ("order", OrderRecord::to_bytes(order, *by)?),
        };
        let record = serde_json::from_slice(&bytes).map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(StoredEntity { kind: kind.to_owned(), record })
    }
}

impl StoredEntity {
    fn entity(&self) -> Result<Entity, StoreError> {
        let bytes = serde_json::to_vec(&self.record).map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(match self.kind.as_str() {
            "user" => Entity::User(UserRecord::from_bytes(&bytes)?),
            "category" => Entity::Category(CategoryRecord::from_bytes(&bytes)?),
            "product" => Entity::Product(ProductRecord::from_bytes(&bytes)?),
            "order" => {
                let (order, changed_by) = OrderRecord::from_bytes_with_actor(&bytes)?;
                Entity::Order { order, changed_by }
            }
            other => {
                return Err(StoreError::Internal(format!("outbox entry of unknown kind `{other}`")));
            }
        })
    }
}

/// Adds the outbox entry of one write to `txn`.
pub(super) fn record_change(
    txn: &WriteTransaction,
    old: Option<Written<'_>>,
    new: Option<Written<'_>>,
) -> Result<(), StoreError> {
    let entry = OutboxRecord {
        at: OffsetDateTime::now_utc(),
        old: old.map(|w| w.stored()).transpose()?,
        new: new.map(|w| w.stored()).transpose()?,
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Internal(e.to_string()))?;
    // UUID v7: key order is write order, and an id is never reused.
    let id = uuid::Uuid::now_v7().hyphenated().to_string();
    txn.open_table(OUTBOX).map_err(internal)?.insert(id.as_str(), bytes.as_slice()).map_err(internal)?;
    Ok(())
}

#[async_trait]
impl ChangeFeed for EmbeddedStore {
    async fn changes_after(&self, after: Option<String>, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let outbox = txn.open_table(OUTBOX).map_err(internal)?;
            let lower = match &after {
                Some(id) => Bound::Excluded(id.as_str()),
                None => Bound::Unbounded,
            };
            let mut changes = Vec::new();
            for entry in outbox.range::<&str>((lower, Bound::Unbounded)).map_err(internal)?.take(limit) {
                let (key, value) = entry.map_err(internal)?;
                let record: OutboxRecord = serde_json::from_slice(value.value())
                    .map_err(|e| StoreError::Internal(format!("corrupt outbox entry: {e}")))?;
                changes.push(Change {
                    id: key.value().to_owned(),
                    at: record.at,
                    old: record.old.as_ref().map(StoredEntity::entity).transpose()?,
                    new: record.new.as_ref().map(StoredEntity::entity).transpose()?,
                });
            }
            Ok(changes)
        })
        .await
    }

    async fn acknowledge(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut outbox = txn.open_table(OUTBOX).map_err(internal)?;
                for id in &ids {
                    outbox.remove(id.as_str()).map_err(internal)?;
                }
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn wait_for_changes(&self) {
        self.changed.notified().await;
    }
}

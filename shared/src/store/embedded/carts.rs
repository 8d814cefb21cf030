//! Carts in redb: one record per user, an expiry index the sweep walks
//! (never the whole table), and checkout as one write transaction with the
//! order it places.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::orders::reserve_and_place;
use super::{CARTS, CARTS_BY_EXPIRY, EmbeddedStore, internal};
use crate::domain::{Cart, CartLine, Order, UserId};
use crate::store::{CartStore, IdempotencyTicket, StoreError};

/// A stored cart.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CartRecord {
    lines: Vec<CartLine>,
    version: u64,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    /// Unix seconds; also the first part of the expiry index's key.
    expires_at: i64,
}

impl CartRecord {
    fn into_cart(self, user_id: UserId) -> Cart {
        Cart { user_id, lines: self.lines, version: self.version, updated_at: Some(self.updated_at) }
    }
}

/// The stored cart of `user`, expired or not.
fn read_cart(txn: &WriteTransaction, user: &str) -> Result<Option<CartRecord>, StoreError> {
    let carts = txn.open_table(CARTS).map_err(internal)?;
    let found = carts.get(user).map_err(internal)?;
    found
        .map(|bytes| {
            serde_json::from_slice(bytes.value()).map_err(|e| StoreError::Internal(format!("cart record: {e}")))
        })
        .transpose()
}

/// The version a compare-and-set sees: 0 for no cart or an expired one.
fn live_version(record: Option<&CartRecord>, now: OffsetDateTime) -> u64 {
    record.filter(|r| r.expires_at > now.unix_timestamp()).map_or(0, |r| r.version)
}

fn remove_cart(txn: &WriteTransaction, user: &str, record: Option<&CartRecord>) -> Result<(), StoreError> {
    if let Some(record) = record {
        txn.open_table(CARTS).map_err(internal)?.remove(user).map_err(internal)?;
        txn.open_table(CARTS_BY_EXPIRY).map_err(internal)?.remove((record.expires_at, user)).map_err(internal)?;
    }
    Ok(())
}

#[async_trait]
impl CartStore for EmbeddedStore {
    async fn cart(&self, user_id: UserId, now: OffsetDateTime) -> Result<Option<Cart>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let carts = txn.open_table(CARTS).map_err(internal)?;
            let Some(bytes) = carts.get(user_id.to_string().as_str()).map_err(internal)? else { return Ok(None) };
            let record: CartRecord =
                serde_json::from_slice(bytes.value()).map_err(|e| StoreError::Internal(format!("cart record: {e}")))?;
            Ok((record.expires_at > now.unix_timestamp()).then(|| record.into_cart(user_id)))
        })
        .await
    }

    async fn save_cart(&self, cart: &Cart, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let cart = cart.clone();
        self.blocking(move |db| {
            let updated_at =
                cart.updated_at.ok_or_else(|| StoreError::Internal("a cart saved without a time".into()))?;
            let user = cart.user_id.to_string();
            let txn = db.begin_write().map_err(internal)?;
            let stored = read_cart(&txn, &user)?;
            if live_version(stored.as_ref(), updated_at) + 1 != cart.version {
                return Err(StoreError::CartChanged);
            }
            remove_cart(&txn, &user, stored.as_ref())?;
            let record = CartRecord {
                lines: cart.lines,
                version: cart.version,
                updated_at,
                expires_at: expires_at.unix_timestamp(),
            };
            let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Internal(e.to_string()))?;
            txn.open_table(CARTS).map_err(internal)?.insert(user.as_str(), bytes.as_slice()).map_err(internal)?;
            let mut by_expiry = txn.open_table(CARTS_BY_EXPIRY).map_err(internal)?;
            by_expiry.insert((record.expires_at, user.as_str()), ()).map_err(internal)?;
            drop(by_expiry);
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn delete_cart(&self, user_id: UserId, version: Option<u64>) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let user = user_id.to_string();
            let txn = db.begin_write().map_err(internal)?;
            let stored = read_cart(&txn, &user)?;
            if version.is_some_and(|v| v != live_version(stored.as_ref(), OffsetDateTime::now_utc())) {
                return Err(StoreError::CartChanged);
            }
            remove_cart(&txn, &user, stored.as_ref())?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn check_out(
        &self,
        order: &Order,
        cart_version: u64,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError> {
        let order = order.clone();
        let completion = completion.map(|(ticket, body)| (ticket.clone(), body.to_owned()));
        self.writing(move |db| {
            let user = order.user_id.to_string();
            let txn = db.begin_write().map_err(internal)?;
            let stored = read_cart(&txn, &user)?;
            if cart_version == 0 || live_version(stored.as_ref(), order.created_at) != cart_version {
                return Err(StoreError::CartChanged);
            }
            reserve_and_place(&txn, &order, completion.as_ref().map(|(ticket, body)| (ticket, body.as_str())))?;
            remove_cart(&txn, &user, stored.as_ref())?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn sweep_expired_carts(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let due: Vec<(i64, String)> = {
                let by_expiry = txn.open_table(CARTS_BY_EXPIRY).map_err(internal)?;
                let range = by_expiry.range((i64::MIN, "")..(now.unix_timestamp() + 1, "")).map_err(internal)?;
                range
                    .take(limit)
                    .map(|entry| entry.map(|(key, _)| (key.value().0, key.value().1.to_owned())).map_err(internal))
                    .collect::<Result<_, _>>()?
            };
            {
                let mut carts = txn.open_table(CARTS).map_err(internal)?;
                let mut by_expiry = txn.open_table(CARTS_BY_EXPIRY).map_err(internal)?;
                for (expires_at, user) in &due {
                    carts.remove(user.as_str()).map_err(internal)?;
                    by_expiry.remove((*expires_at, user.as_str())).map_err(internal)?;
                }
            }
            txn.commit().map_err(internal)?;
            Ok(due.len())
        })
        .await
    }
}

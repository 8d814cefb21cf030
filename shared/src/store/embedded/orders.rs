//! Orders and idempotency records in redb. Placing and cancelling are each
//! one write transaction over the products, the order and its indexes.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use time::OffsetDateTime;

use super::catalog::{read_product, write_product};
use super::outbox::{Written, record_change};
use super::records::{IdempotencyRecord, OrderRecord};
use super::{EmbeddedStore, IDEMPOTENCY, ORDERS, ORDERS_BY_STATUS, ORDERS_BY_USER, PAYMENT_EVENTS, internal};
use crate::domain::payment::StockMove;
use crate::domain::{Order, OrderId, OrderStatus, UserId};
use crate::events::Actor;
use crate::store::{
    IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, IdempotencyClaim, IdempotencyTicket, OrderPage, OrderStore, StoreError,
    time_ordered_bound,
};

fn idempotency_key(user_id: UserId, key: &str) -> String {
    format!("{user_id} {key}")
}

#[async_trait]
impl OrderStore for EmbeddedStore {
    async fn claim_idempotency_key(
        &self,
        user_id: UserId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Result<IdempotencyClaim, StoreError> {
        let (record_key, key, fingerprint) = (idempotency_key(user_id, key), key.to_owned(), fingerprint.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let claim = {
                let mut records = txn.open_table(IDEMPOTENCY).map_err(internal)?;
                let existing = records
                    .get(record_key.as_str())
                    .map_err(internal)?
                    .map(|v| IdempotencyRecord::from_bytes(v.value()));
                let existing = existing.transpose()?.filter(|r| r.expires_at > now.unix_timestamp());
                match existing {
                    Some(record) if record.fingerprint != fingerprint => IdempotencyClaim::Mismatch,
                    Some(IdempotencyRecord { response: Some((status, body)), .. }) => {
                        IdempotencyClaim::Replay { status, body }
                    }
                    Some(record) if record.lease_until > now.unix_timestamp() => IdempotencyClaim::InProgress,
                    // Absent, expired, or a claim whose holder died: ours.
                    _ => {
                        let token = uuid::Uuid::new_v4().to_string();
                        let record = IdempotencyRecord {
                            fingerprint,
                            token: token.clone(),
                            lease_until: (now + IDEMPOTENCY_LEASE).unix_timestamp(),
                            expires_at: (now + IDEMPOTENCY_TTL).unix_timestamp(),
                            response: None,
                        };
                        records.insert(record_key.as_str(), record.to_bytes()?.as_slice()).map_err(internal)?;
                        IdempotencyClaim::Acquired(IdempotencyTicket { user_id, key, token })
                    }
                }
            };
            txn.commit().map_err(internal)?;
            Ok(claim)
        })
        .await
    }

    async fn release_idempotency_key(&self, ticket: &IdempotencyTicket) -> Result<(), StoreError> {
        let (record_key, token) = (idempotency_key(ticket.user_id, &ticket.key), ticket.token.clone());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut records = txn.open_table(IDEMPOTENCY).map_err(internal)?;
                let ours = match records.get(record_key.as_str()).map_err(internal)? {
                    Some(value) => IdempotencyRecord::from_bytes(value.value())?.token == token,
                    None => false,
                };
                if ours {
                    records.remove(record_key.as_str()).map_err(internal)?;
                }
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn place_order(
        &self,
        order: &Order,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError> {
        let order = order.clone();
        let completion = completion.map(|(ticket, body)| (ticket.clone(), body.to_owned()));
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            reserve_and_place(&txn, &order, completion.as_ref().map(|(ticket, body)| (ticket, body.as_str())))?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn pending_orders_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let index = txn.open_table(ORDERS_BY_STATUS).map_err(internal)?;
            let orders = txn.open_table(ORDERS).map_err(internal)?;
            let (pending, bound) = (OrderStatus::Pending.as_str(), time_ordered_bound(cutoff));
            let mut due = Vec::new();
            for entry in index.range((pending, "")..(pending, bound.as_str())).map_err(internal)?.take(limit) {
                let (key, _) = entry.map_err(internal)?;
                if let Some(bytes) = orders.get(key.value().1).map_err(internal)? {
                    due.push(OrderRecord::from_bytes(bytes.value())?);
                }
            }
            Ok(due)
        })
        .await
    }

    async fn order_by_id(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let orders = txn.open_table(ORDERS).map_err(internal)?;
            let found = orders.get(id.to_string().as_str()).map_err(internal)?;
            found.map(|bytes| OrderRecord::from_bytes(bytes.value())).transpose()
        })
        .await
    }

    async fn orders_of_user(
        &self,
        user_id: UserId,
        status: Option<OrderStatus>,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let index = txn.open_table(ORDERS_BY_USER).map_err(internal)?;
            let orders = txn.open_table(ORDERS).map_err(internal)?;
            let keep = |order: &Order| status.is_none_or(|s| order.status == s);
            newest_first_page(&index, &user_id.to_string(), after, &orders, limit, keep)
        })
        .await
    }

    async fn orders_by_status(
        &self,
        status: OrderStatus,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let index = txn.open_table(ORDERS_BY_STATUS).map_err(internal)?;
            let orders = txn.open_table(ORDERS).map_err(internal)?;
            newest_first_page(&index, status.as_str(), after, &orders, limit, |_| true)
        })
        .await
    }

    async fn update_order(
        &self,
        current: &Order,
        next: &Order,
        stock: StockMove,
        by: &Actor,
    ) -> Result<(), StoreError> {
        let (expected, next, by) = (current.clone(), next.clone(), by.clone());
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let stored = {
                let orders = txn.open_table(ORDERS).map_err(internal)?;
                let found = orders.get(expected.id.to_string().as_str()).map_err(internal)?;
                found.map(|bytes| OrderRecord::from_bytes(bytes.value())).transpose()?.ok_or(StoreError::NotFound)?
            };
            if stored.status != expected.status || stored.payment != expected.payment {
                return Err(StoreError::StatusChanged);
            }
            match stock {
                StockMove::Keep => {}
                StockMove::Release => release_stock(&txn, &stored, next.updated_at)?,
                StockMove::Reserve => reserve_stock(&txn, &stored, next.updated_at)?,
            }
            write_order(&txn, &next, Some(&stored), Some(&by))?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn record_payment_event(&self, id: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let fresh = {
                let mut events = txn.open_table(PAYMENT_EVENTS).map_err(internal)?;
                let now = OffsetDateTime::now_utc().unix_timestamp();
                let live = events.get(id.as_str()).map_err(internal)?.is_some_and(|until| until.value() > now);
                if !live {
                    events.insert(id.as_str(), expires_at.unix_timestamp()).map_err(internal)?;
                }
                !live
            };
            txn.commit().map_err(internal)?;
            Ok(fresh)
        })
        .await
    }

    async fn payment_event_seen(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let events = txn.open_table(PAYMENT_EVENTS).map_err(internal)?;
            Ok(events.get(id.as_str()).map_err(internal)?.is_some_and(|until| until.value() > now.unix_timestamp()))
        })
        .await
    }
}

/// Within `txn`: every line's units back to its product (a product
/// deleted since has no stock to return to).
fn release_stock(txn: &WriteTransaction, order: &Order, at: OffsetDateTime) -> Result<(), StoreError> {
    for item in &order.items {
        if let Some(product) = read_product(txn, item.product_id)? {
            let restocked =
                crate::domain::Product { stock: product.stock + item.quantity, updated_at: at, ..product.clone() };
            write_product(txn, &restocked, Some(&product))?;
        }
    }
    Ok(())
}

/// Within `txn`: takes every line's quantity from its product's stock, all
/// or nothing ([`StoreError::InsufficientStock`] names every short line).
fn reserve_stock(txn: &WriteTransaction, order: &Order, at: OffsetDateTime) -> Result<(), StoreError> {
    let mut short = Vec::new();
    let mut reserved = Vec::new();
    for item in &order.items {
        match read_product(txn, item.product_id)? {
            Some(product) if product.stock >= item.quantity => reserved.push(product),
            _ => short.push(item.product_id),
        }
    }
    if !short.is_empty() {
        return Err(StoreError::InsufficientStock(short));
    }
    for (product, item) in reserved.iter().zip(&order.items) {
        let updated =
            crate::domain::Product { stock: product.stock - item.quantity, updated_at: at, ..product.clone() };
        write_product(txn, &updated, Some(product))?;
    }
    Ok(())
}

/// Within `txn`: takes every line's quantity from its product's stock (all
/// or nothing), writes the order, and completes the idempotency ticket.
/// Shared by placing an order and checking out a cart.
pub(super) fn reserve_and_place(
    txn: &WriteTransaction,
    order: &Order,
    completion: Option<(&IdempotencyTicket, &str)>,
) -> Result<(), StoreError> {
    reserve_stock(txn, order, order.created_at)?;
    write_order(txn, order, None, None)?;
    if let Some((ticket, body)) = completion {
        complete_ticket(txn, ticket, body)?;
    }
    Ok(())
}

/// Reads orders by id in index order until `limit + 1` pass `keep`.
/// One page of the orders an index lists under `prefix` (keys `(prefix,
/// order id)`; UUID v7 ids sort by time), newest first, starting after the
/// cursor `after`, keeping those `keep` accepts.
fn newest_first_page(
    index: &impl ReadableTable<(&'static str, &'static str), ()>,
    prefix: &str,
    after: Option<OrderId>,
    orders: &impl ReadableTable<&'static str, &'static [u8]>,
    limit: usize,
    keep: impl Fn(&Order) -> bool,
) -> Result<OrderPage, StoreError> {
    let after = after.map(|id| id.to_string());
    let upper = match &after {
        Some(id) => Bound::Excluded((prefix, id.as_str())),
        None => Bound::Included((prefix, "\u{10FFFF}")),
    };
    let range = index.range((Bound::Included((prefix, "")), upper)).map_err(internal)?;
    let ids = range.rev().map(|entry| entry.map(|(key, _)| key.value().1.to_owned()).map_err(internal));
    collect_page(ids, orders, limit, keep)
}

fn collect_page(
    ids: impl Iterator<Item = Result<String, StoreError>>,
    orders: &impl ReadableTable<&'static str, &'static [u8]>,
    limit: usize,
    keep: impl Fn(&Order) -> bool,
) -> Result<OrderPage, StoreError> {
    let mut items = Vec::with_capacity(limit + 1);
    for id in ids {
        let id = id?;
        let Some(bytes) = orders.get(id.as_str()).map_err(internal)? else { continue };
        let order = OrderRecord::from_bytes(bytes.value())?;
        if keep(&order) {
            items.push(order);
            if items.len() > limit {
                items.truncate(limit);
                let next = items.last().map(|o| o.id);
                return Ok(OrderPage { items, next });
            }
        }
    }
    Ok(OrderPage { items, next: None })
}

/// Writes `order` (last changed by `by`), moves its status index entry
/// from where `previous` had it, and records the change.
fn write_order(
    txn: &WriteTransaction,
    order: &Order,
    previous: Option<&Order>,
    by: Option<&Actor>,
) -> Result<(), StoreError> {
    record_change(txn, previous.map(|p| Written::Order(p, None)), Some(Written::Order(order, by)))?;
    let id = order.id.to_string();
    let bytes = OrderRecord::to_bytes(order, by)?;
    txn.open_table(ORDERS).map_err(internal)?.insert(id.as_str(), bytes.as_slice()).map_err(internal)?;
    let user = order.user_id.to_string();
    txn.open_table(ORDERS_BY_USER).map_err(internal)?.insert((user.as_str(), id.as_str()), ()).map_err(internal)?;
    let mut by_status = txn.open_table(ORDERS_BY_STATUS).map_err(internal)?;
    if let Some(previous) = previous {
        by_status.remove((previous.status.as_str(), id.as_str())).map_err(internal)?;
    }
    by_status.insert((order.status.as_str(), id.as_str()), ()).map_err(internal)?;
    Ok(())
}

/// Stores the response under the ticket's key, if the ticket still holds it.
fn complete_ticket(txn: &WriteTransaction, ticket: &IdempotencyTicket, body: &str) -> Result<(), StoreError> {
    let key = idempotency_key(ticket.user_id, &ticket.key);
    let mut records = txn.open_table(IDEMPOTENCY).map_err(internal)?;
    let record = match records.get(key.as_str()).map_err(internal)? {
        Some(value) => IdempotencyRecord::from_bytes(value.value())?,
        None => return Err(StoreError::Internal("idempotency claim vanished".into())),
    };
    if record.token != ticket.token || record.response.is_some() {
        return Err(StoreError::Internal("idempotency claim taken over".into()));
    }
    let completed = IdempotencyRecord { response: Some((201, body.to_owned())), ..record };
    records.insert(key.as_str(), completed.to_bytes()?.as_slice()).map_err(internal)?;
    Ok(())
}

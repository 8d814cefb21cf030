//! Orders and idempotency records.
//!
//! Placing an order is one `TransactWriteItems`: a conditional decrement
//! per line (`stock >= quantity`), the order put, and the completion of
//! the idempotency record. Cancelling is the reverse: the status change
//! conditioned on the old status, plus an increment per line.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::{classify, send_transaction, transaction_conflict};
use super::items::{
    Item, Key, attr_s, attr_u64, n, order_from_item, order_to_item, s, status_orders_partition, status_shard,
    timestamp, user_orders_partition,
};
use super::paging::collect;
use super::shards::{Fetched, STATUS_SHARDS, every_shard, fetch, merge};
use super::stock::{Direction, Refused};
use crate::domain::payment::StockMove;
use crate::domain::{Order, OrderId, OrderStatus, PaymentStatus, ProductId, UserId};
use crate::events::Actor;
use crate::store::{
    IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL, IdempotencyClaim, IdempotencyTicket, OrderPage, OrderStore, StoreError,
    time_ordered_bound,
};

/// Index queries one status-filtered listing may make per page.
const MAX_QUERIES_PER_PAGE: usize = 10;

impl DynamoStore {
    pub(super) fn update(
        &self,
        key: Key,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        self.update_telling(key, expression, condition, names, values, None)
    }

    /// [`DynamoStore::update`], the item as it was returned in the
    /// cancellation reason when `on_failure` says so and its condition
    /// fails.
    pub(super) fn update_telling(
        &self,
        key: Key,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        on_failure: Option<ReturnValuesOnConditionCheckFailure>,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .set_return_values_on_condition_check_failure(on_failure)
            .table_name(&self.table)
            .set_key(Some(key.into_item()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(
                (!names.is_empty()).then(|| names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            )
            .set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One page of an index partition, newest first, optionally filtered by
    /// status; pages again while the filter leaves the page short.
    async fn order_page(
        &self,
        index: &str,
        partition: String,
        status: Option<OrderStatus>,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        let (pk, sk) = (format!("{index}PK"), format!("{index}SK"));
        let condition = if after.is_some() { "#pk = :pk AND #sk < :after" } else { "#pk = :pk" };
        let mut names = HashMap::from([("#pk".to_owned(), pk), ("#sk".to_owned(), sk)]);
        if after.is_none() {
            names.remove("#sk");
        }
        let mut values = HashMap::from([(":pk".to_owned(), s(partition))]);
        if let Some(after) = after {
            values.insert(":after".into(), s(after.to_string()));
        }
        if let Some(status) = status {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(status.as_str()));
        }
        let wanted = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .set_filter_expression(status.map(|_| "#status = :status".to_owned()))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(false)
            .limit(if status.is_some() { (wanted * 4).clamp(50, 1000) } else { wanted });
        let page = collect(request, None, limit, MAX_QUERIES_PER_PAGE, order_from_item).await?;
        // Out of query budget: resume after the last order examined.
        let next = page.next(|o| o.id, |key| Ok(OrderId::parse(&attr_s(key, &format!("{index}SK"))?)))?;
        Ok(OrderPage { items: page.items, next })
    }
}

impl DynamoStore {
    /// The items of placing `order` after its stock takes (see
    /// [`DynamoStore::send_with_stock`]), in this order: the order put and
    /// the completion of the idempotency ticket (see [`placing_failure`]).
    /// Checkout adds the cart's removal after them.
    pub(super) fn order_writes(
        &self,
        order: &Order,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut writes = vec![self.put(order_to_item(order)?, "attribute_not_exists(PK)")?];
        if let Some((ticket, body)) = completion {
            writes.push(self.update(
                Key::idempotency(ticket.user_id, &ticket.key),
                "SET responseStatus = :status, responseBody = :body",
                "#token = :token AND attribute_not_exists(responseBody)",
                &[("#token", "token")],
                vec![(":status", n(201)), (":body", s(body)), (":token", s(ticket.token.clone()))],
            )?);
        }
        Ok(writes)
    }
}

/// An order's lines as the stock sees them.
pub(super) fn lines_of(order: &Order) -> Vec<(ProductId, u64)> {
    order.items.iter().map(|line| (line.product_id, line.quantity)).collect()
}

/// What a refused placing of [`DynamoStore::order_writes`] means: short
/// stock, or a collision of the order's own items that no retry mends.
pub(super) fn placing_failure(refused: Refused) -> StoreError {
    match refused {
        Refused::Short(short) => StoreError::InsufficientStock(short),
        Refused::Store(err) => err,
        Refused::Other(err, first_own) => transaction_conflict(*err, |index| {
            if index <= first_own {
                StoreError::Internal("order id collision".into())
            } else {
                StoreError::Internal("idempotency claim taken over".into())
            }
        }),
    }
}

fn reply_of(record: &Item) -> Option<(u16, String)> {
    let status = attr_u64(record, "responseStatus").ok()?;
    let body = attr_s(record, "responseBody").ok()?;
    Some((u16::try_from(status).ok()?, body))
}

#[async_trait]
impl OrderStore for DynamoStore {
    async fn claim_idempotency_key(
        &self,
        user_id: UserId,
        key: &str,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Result<IdempotencyClaim, StoreError> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut record = Key::idempotency(user_id, key).into_item();
        record.extend([
            ("entity".to_owned(), s("idempotency")),
            ("fingerprint".to_owned(), s(fingerprint)),
            ("token".to_owned(), s(token.clone())),
            ("leaseUntil".to_owned(), n((now + IDEMPOTENCY_LEASE).unix_timestamp())),
            ("expiresAt".to_owned(), n((now + IDEMPOTENCY_TTL).unix_timestamp())),
        ]);
        // Ours if absent, expired (TTL deletes lazily), or claimed by a
        // request whose lease ran out without completing, for the same body.
        let result = self
            .writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression(
                "attribute_not_exists(PK) OR expiresAt < :now \
                 OR (attribute_not_exists(responseBody) AND leaseUntil < :now AND fingerprint = :fp)",
            )
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .expression_attribute_values(":fp", s(fingerprint))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let existing = match result {
            Ok(_) => return Ok(IdempotencyClaim::Acquired(IdempotencyTicket { user_id, key: key.to_owned(), token })),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    failed.item().cloned().unwrap_or_default()
                }
                _ => return Err(classify(err)),
            },
        };
        if attr_s(&existing, "fingerprint")? != fingerprint {
            return Ok(IdempotencyClaim::Mismatch);
        }
        Ok(match reply_of(&existing) {
            Some((status, body)) => IdempotencyClaim::Replay { status, body },
            None => IdempotencyClaim::InProgress,
        })
    }

    async fn release_idempotency_key(&self, ticket: &IdempotencyTicket) -> Result<(), StoreError> {
        let result = self
            .writer
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::idempotency(ticket.user_id, &ticket.key).into_item()))
            .condition_expression("#token = :token AND attribute_not_exists(responseBody)")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(ticket.token.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else holds it now: not ours to release.
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }

    async fn place_order(
        &self,
        order: &Order,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError> {
        let own = self.order_writes(order, completion)?;
        self.send_with_stock(&lines_of(order), Direction::Reserve, order.created_at, &own)
            .await
            .map_err(placing_failure)
    }

    async fn pending_orders_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError> {
        self.pending_before(cutoff, limit).await
    }

    async fn order_by_id(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.get(Key::order(id)).await?.map(|item| order_from_item(&item)).transpose()
    }

    async fn orders_of_user(
        &self,
        user_id: UserId,
        status: Option<OrderStatus>,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        self.order_page("GSI1", user_orders_partition(user_id), status, limit, after).await
    }

    async fn orders_by_status(
        &self,
        status: OrderStatus,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        self.orders_in_shards(status, limit, after).await
    }

    async fn update_order(
        &self,
        current: &Order,
        next: &Order,
        stock: StockMove,
        by: &Actor,
    ) -> Result<(), StoreError> {
        let order_write = self.order_update(current, next, by)?;
        let direction = match stock {
            StockMove::Keep => {
                let request = self.writer.transact_write_items().transact_items(order_write);
                return send_transaction(request)
                    .await
                    .map(|_| ())
                    .map_err(|err| transaction_conflict(err, |_| StoreError::StatusChanged));
            }
            StockMove::Reserve => Direction::Reserve,
            StockMove::Release => Direction::Release,
        };
        match self.send_with_stock(&lines_of(current), direction, next.updated_at, &[order_write]).await {
            Ok(()) => Ok(()),
            Err(Refused::Short(short)) => Err(StoreError::InsufficientStock(short)),
            Err(Refused::Store(err)) => Err(err),
            Err(Refused::Other(err, _)) => Err(transaction_conflict(*err, |_| StoreError::StatusChanged)),
        }
    }

    async fn record_payment_event(&self, id: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut item = Key::payment_event(id).into_item();
        item.extend([
            ("entity".to_owned(), s("paymentEvent")),
            ("expiresAt".to_owned(), n(expires_at.unix_timestamp())),
        ]);
        let result = self
            .writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // TTL deletes lazily: an expired record is as good as none.
            .condition_expression("attribute_not_exists(PK) OR expiresAt < :now")
            .expression_attribute_values(":now", n(OffsetDateTime::now_utc().unix_timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(classify(err)),
        }
    }

    async fn payment_event_seen(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let found = self.get(Key::payment_event(id)).await?;
        Ok(found
            .is_some_and(|item| attr_u64(&item, "expiresAt").is_ok_and(|until| until as i64 > now.unix_timestamp())))
    }
}

impl DynamoStore {
    /// The order's own write of [`OrderStore::update_order`]: `next`'s
    /// status and payment, conditioned on the stored status and payment
    /// being `current`'s (orders stored before payments have no payment
    /// attributes: unpaid, no intent, no attempts).
    fn order_update(&self, current: &Order, next: &Order, by: &Actor) -> Result<TransactWriteItem, StoreError> {
        let set = [
            "#status = :to",
            "#updatedAt = :now",
            "GSI2PK = :statusPartition",
            "#changedBy = :by",
            "paymentStatus = :payment",
            "paymentAttempts = :attempts",
        ];
        let mut values = vec![
            (":to", s(next.status.as_str())),
            (":now", timestamp(next.updated_at)),
            (":statusPartition", s(status_shard(next.status, next.id))),
            (":by", s(by.to_stored())),
            (":payment", s(next.payment.status.as_str())),
            (":attempts", n(next.payment.attempts)),
            (":from", s(current.status.as_str())),
            (":paymentFrom", s(current.payment.status.as_str())),
            (":attemptsFrom", n(current.payment.attempts)),
        ];
        let mut condition = String::from("#status = :from");
        condition.push_str(match current.payment.status {
            PaymentStatus::Unpaid => " AND (paymentStatus = :paymentFrom OR attribute_not_exists(paymentStatus))",
            _ => " AND paymentStatus = :paymentFrom",
        });
        condition.push_str(match current.payment.attempts {
            0 => " AND (paymentAttempts = :attemptsFrom OR attribute_not_exists(paymentAttempts))",
            _ => " AND paymentAttempts = :attemptsFrom",
        });
        match &current.payment.intent_id {
            Some(intent) => {
                condition.push_str(" AND paymentIntent = :intentFrom");
                values.push((":intentFrom", s(intent.clone())));
            }
            None => condition.push_str(" AND attribute_not_exists(paymentIntent)"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        match &next.payment.intent_id {
            Some(intent) => {
                expression.push_str(", paymentIntent = :intent");
                values.push((":intent", s(intent.clone())));
            }
            None => expression.push_str(" REMOVE paymentIntent"),
        }
        self.update(
            Key::order(current.id),
            &expression,
            &condition,
            &[("#status", "status"), ("#updatedAt", "updatedAt"), ("#changedBy", "changedBy")],
            values,
        )
    }
}

impl DynamoStore {
    /// Pending orders placed before `cutoff`, oldest first: every shard of
    /// GSI2's pending partition up to the cutoff's id bound (UUID v7 ids
    /// sort by time), merged.
    async fn pending_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError> {
        let partitions = every_shard(&status_orders_partition(OrderStatus::Pending), STATUS_SHARDS);
        let bound = time_ordered_bound(cutoff);
        let merged = merge(partitions, "GSI2SK", limit, true, |partition, start, count| {
            self.status_query(partition, ("GSI2SK < :bound", bound.clone()), true, start, count)
        })
        .await?;
        merged.items.iter().map(order_from_item).collect()
    }

    /// One page of the orders in `status`, newest first, merged from every
    /// shard of its partition.
    async fn orders_in_shards(
        &self,
        status: OrderStatus,
        limit: usize,
        after: Option<OrderId>,
    ) -> Result<OrderPage, StoreError> {
        let partitions = every_shard(&status_orders_partition(status), STATUS_SHARDS);
        let bound = match after {
            Some(after) => ("GSI2SK < :bound", after.to_string()),
            // Above every id: all of them.
            None => ("GSI2SK < :bound", "~".to_owned()),
        };
        let merged = merge(partitions, "GSI2SK", limit, false, |partition, start, count| {
            self.status_query(partition, bound.clone(), false, start, count)
        })
        .await?;
        let items: Vec<Order> = merged.items.iter().map(order_from_item).collect::<Result<_, _>>()?;
        let next = if merged.more { items.last().map(|order| order.id) } else { None };
        Ok(OrderPage { items, next })
    }

    /// One query of one shard of a status partition, from `start`.
    async fn status_query(
        &self,
        partition: String,
        (sort_condition, bound): (&str, String),
        ascending: bool,
        start: Option<Item>,
        count: i32,
    ) -> Result<Fetched, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression(format!("GSI2PK = :pk AND {sort_condition}"))
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":bound", s(bound))
            .scan_index_forward(ascending);
        fetch(request, start, count).await
    }
}

/// Positions (below `count`) of the transaction items whose condition failed.
pub(super) fn items_failing<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
    count: usize,
) -> Vec<usize> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(i, reason)| *i < count && reason.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect(),
        _ => Vec::new(),
    }
}

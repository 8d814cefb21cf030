//! Webhook subscriptions and their delivery log in the table.
//!
//! Subscriptions share one partition (`WEBHOOKS`, sort key `WEBHOOK#<id>`),
//! read with one strongly consistent query: there are at most
//! [`crate::webhooks::MAX_WEBHOOKS`]. Beside them a counter item (`COUNT`)
//! is moved in the same transaction as every create and delete, so the cap
//! holds under concurrent creates. Each attempt is an item in the
//! subscription's own partition (`WEBHOOK#<id>`, `DELIVERY#<attempt id>`),
//! deleted by TTL after 30 days.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DynamoStore;
use super::errors::{classify, transaction_conflict};
use super::items::{Item, attr_s, n, s};
use super::paging::collect;
use crate::store::{DeliveryPage, StoreError, WebhookStore};
use crate::webhooks::{DELIVERY_LOG_RETENTION, DeliveryAttempt, Webhook, WebhookSecret};

const PARTITION: &str = "WEBHOOKS";
const COUNT: &str = "COUNT";
/// Rotations retried when another rotation of the same subscription won.
const ROTATION_ATTEMPTS: usize = 3;
/// Queries one page of attempts may make while expired items fill it.
const MAX_QUERIES_PER_PAGE: usize = 5;

fn webhook_key(id: Uuid) -> Item {
    HashMap::from([("PK".to_owned(), s(PARTITION)), ("SK".to_owned(), s(format!("WEBHOOK#{id}")))])
}

fn count_key() -> Item {
    HashMap::from([("PK".to_owned(), s(PARTITION)), ("SK".to_owned(), s(COUNT))])
}

fn deliveries_partition(webhook: Uuid) -> String {
    format!("WEBHOOK#{webhook}")
}

fn internal(err: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(err.to_string())
}

fn webhook_json(webhook: &Webhook) -> Result<String, StoreError> {
    serde_json::to_string(webhook).map_err(internal)
}

fn webhook_to_item(webhook: &Webhook) -> Result<Item, StoreError> {
    let mut item = webhook_key(webhook.id);
    item.extend([("entity".to_owned(), s("webhook")), ("webhook".to_owned(), s(webhook_json(webhook)?))]);
    Ok(item)
}

fn webhook_from_item(item: &Item) -> Result<Webhook, StoreError> {
    serde_json::from_str(&attr_s(item, "webhook")?).map_err(|e| StoreError::Internal(format!("webhook item: {e}")))
}

fn attempt_from_item(item: &Item) -> Result<DeliveryAttempt, StoreError> {
    serde_json::from_str(&attr_s(item, "attempt")?).map_err(|e| StoreError::Internal(format!("delivery item: {e}")))
}

impl DynamoStore {
    /// The subscription counter moved by `delta`; adding is conditioned on
    /// staying within `limit`.
    fn count_webhooks(&self, delta: i64, limit: Option<usize>) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(count_key()))
            .update_expression("ADD webhooks :delta")
            .expression_attribute_values(":delta", n(delta));
        if let Some(limit) = limit {
            update = update
                .condition_expression("attribute_not_exists(webhooks) OR webhooks < :limit")
                .expression_attribute_values(":limit", n(limit));
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(internal)?).build())
    }
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn create_webhook(&self, webhook: &Webhook, limit: usize) -> Result<(), StoreError> {
        let result = self
            .writer
            .transact_write_items()
            .transact_items(self.count_webhooks(1, Some(limit))?)
            .transact_items(self.put(webhook_to_item(webhook)?, "attribute_not_exists(PK)")?)
            .send()
            .await;
        result.map(|_| ()).map_err(|err| {
            transaction_conflict(err, |index| match index {
                0 => StoreError::LimitReached(limit),
                _ => StoreError::Internal("webhook id collision".into()),
            })
        })
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(webhook_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.as_ref().map(webhook_from_item).transpose()
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(PARTITION))
            .expression_attribute_values(":prefix", s("WEBHOOK#"))
            .consistent_read(true)
            .scan_index_forward(false);
        let limit = crate::webhooks::MAX_WEBHOOKS * 2;
        Ok(collect(request, None, limit, 10, webhook_from_item).await?.items)
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(webhook_key(id)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(internal)?;
        let result = self
            .writer
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(self.count_webhooks(-1, None)?)
            .send()
            .await;
        // The attempts stay until their TTL: nothing lists them any more.
        result.map(|_| ()).map_err(|err| transaction_conflict(err, |_| StoreError::NotFound))
    }

    async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: OffsetDateTime,
    ) -> Result<Webhook, StoreError> {
        for _ in 0..ROTATION_ATTEMPTS {
            let Some(mut webhook) = self.webhook(id).await? else { return Err(StoreError::NotFound) };
            let read = webhook_json(&webhook)?;
            webhook.rotate(secret.clone(), previous_until);
            // Compare-and-set on the whole record as read: a concurrent
            // rotation cannot lose the secret it made.
            let result = self
                .writer
                .put_item()
                .table_name(&self.table)
                .set_item(Some(webhook_to_item(&webhook)?))
                .condition_expression("webhook = :read")
                .expression_attribute_values(":read", s(read))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(webhook),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    continue;
                }
                Err(err) => return Err(classify(err)),
            }
        }
        Err(StoreError::Unavailable("the subscription kept changing during the rotation".into()))
    }

    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        let json = serde_json::to_string(attempt).map_err(internal)?;
        let expires = (attempt.attempted_at + DELIVERY_LOG_RETENTION).unix_timestamp();
        let item = HashMap::from([
            ("PK".to_owned(), s(deliveries_partition(attempt.webhook_id))),
            ("SK".to_owned(), s(format!("DELIVERY#{}", attempt.id))),
            ("entity".to_owned(), s("delivery")),
            ("attempt".to_owned(), s(json)),
            ("expiresAt".to_owned(), n(expires)),
        ]);
        self.writer.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }

    async fn deliveries(&self, webhook: Uuid, limit: usize, after: Option<Uuid>) -> Result<DeliveryPage, StoreError> {
        // The partition holds the subscription's attempts only, so "below
        // the last attempt shown" needs no prefix.
        let (condition, sort_value) = match after {
            Some(after) => ("PK = :pk AND SK < :sk", format!("DELIVERY#{after}")),
            None => ("PK = :pk AND begins_with(SK, :sk)", "DELIVERY#".to_owned()),
        };
        let values = HashMap::from([
            (":pk".to_owned(), s(deliveries_partition(webhook))),
            (":sk".to_owned(), AttributeValue::S(sort_value)),
            (":now".to_owned(), n(OffsetDateTime::now_utc().unix_timestamp())),
        ]);
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            // TTL deletes within days, not at once.
            .filter_expression("expiresAt > :now")
            .set_expression_attribute_values(Some(values))
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        let page = collect(request, None, limit, MAX_QUERIES_PER_PAGE, attempt_from_item).await?;
        let next = page.next(
            |attempt| attempt.id,
            |key| Ok(attr_s(key, "SK")?.strip_prefix("DELIVERY#").and_then(|id| Uuid::parse_str(id).ok())),
        )?;
        Ok(DeliveryPage { items: page.items, next })
    }
}

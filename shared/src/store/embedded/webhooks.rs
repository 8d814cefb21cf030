//! Webhook subscriptions and their delivery log in redb. The subscription
//! cap is counted inside the write transaction that adds one; attempts
//! older than the retention are pruned a batch at a time by later writes
//! of the same subscription, and all of a subscription's go with it.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{EmbeddedStore, WEBHOOK_DELIVERIES, WEBHOOKS, internal};
use crate::store::{DeliveryPage, StoreError, WebhookStore, time_ordered_bound};
use crate::webhooks::{DELIVERY_LOG_RETENTION, DeliveryAttempt, Webhook, WebhookSecret};

/// Expired attempts one write prunes at most.
const PRUNE_BATCH: usize = 100;

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Internal(format!("corrupt {what} record: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Internal(e.to_string()))
}

#[async_trait]
impl WebhookStore for EmbeddedStore {
    async fn create_webhook(&self, webhook: &Webhook, limit: usize) -> Result<(), StoreError> {
        let (id, bytes) = (webhook.id.to_string(), encode(webhook)?);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut webhooks = txn.open_table(WEBHOOKS).map_err(internal)?;
                if webhooks.len().map_err(internal)? >= limit as u64 {
                    return Err(StoreError::LimitReached(limit));
                }
                webhooks.insert(id.as_str(), bytes.as_slice()).map_err(internal)?;
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let webhooks = txn.open_table(WEBHOOKS).map_err(internal)?;
            let found = webhooks.get(id.to_string().as_str()).map_err(internal)?;
            found.map(|bytes| decode(bytes.value(), "webhook")).transpose()
        })
        .await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(internal)?;
            let webhooks = txn.open_table(WEBHOOKS).map_err(internal)?;
            let mut all = Vec::new();
            for entry in webhooks.iter().map_err(internal)?.rev() {
                all.push(decode(entry.map_err(internal)?.1.value(), "webhook")?);
            }
            Ok(all)
        })
        .await
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<(), StoreError> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut webhooks = txn.open_table(WEBHOOKS).map_err(internal)?;
                if webhooks.remove(id.as_str()).map_err(internal)?.is_none() {
                    return Err(StoreError::NotFound);
                }
                let mut deliveries = txn.open_table(WEBHOOK_DELIVERIES).map_err(internal)?;
                deliveries.retain_in((id.as_str(), "")..(id.as_str(), "~"), |_, _| false).map_err(internal)?;
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: OffsetDateTime,
    ) -> Result<Webhook, StoreError> {
        let (id, secret) = (id.to_string(), secret.clone());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let webhook = {
                let mut webhooks = txn.open_table(WEBHOOKS).map_err(internal)?;
                let Some(bytes) = webhooks.get(id.as_str()).map_err(internal)?.map(|b| b.value().to_vec()) else {
                    return Err(StoreError::NotFound);
                };
                let mut webhook: Webhook = decode(&bytes, "webhook")?;
                webhook.rotate(secret, previous_until);
                webhooks.insert(id.as_str(), encode(&webhook)?.as_slice()).map_err(internal)?;
                webhook
            };
            txn.commit().map_err(internal)?;
            Ok(webhook)
        })
        .await
    }

    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        let (webhook, id, bytes) = (attempt.webhook_id.to_string(), attempt.id.to_string(), encode(attempt)?);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut deliveries = txn.open_table(WEBHOOK_DELIVERIES).map_err(internal)?;
                deliveries.insert((webhook.as_str(), id.as_str()), bytes.as_slice()).map_err(internal)?;
                let bound = time_ordered_bound(OffsetDateTime::now_utc() - DELIVERY_LOG_RETENTION);
                let expired: Vec<String> = deliveries
                    .range((webhook.as_str(), "")..(webhook.as_str(), bound.as_str()))
                    .map_err(internal)?
                    .take(PRUNE_BATCH)
                    .map(|entry| entry.map(|(key, _)| key.value().1.to_owned()).map_err(internal))
                    .collect::<Result<_, _>>()?;
                for old in expired {
                    deliveries.remove((webhook.as_str(), old.as_str())).map_err(internal)?;
                }
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn deliveries(&self, webhook: Uuid, limit: usize, after: Option<Uuid>) -> Result<DeliveryPage, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let deliveries = txn.open_table(WEBHOOK_DELIVERIES).map_err(internal)?;
            let (webhook, after) = (webhook.to_string(), after.map(|id| id.to_string()));
            let bound = time_ordered_bound(OffsetDateTime::now_utc() - DELIVERY_LOG_RETENTION);
            let upper = match after.as_deref() {
                Some(after) => Bound::Excluded((webhook.as_str(), after)),
                None => Bound::Included((webhook.as_str(), "~")),
            };
            let mut items: Vec<DeliveryAttempt> = Vec::with_capacity(limit + 1);
            for entry in
                deliveries.range((Bound::Included((webhook.as_str(), bound.as_str())), upper)).map_err(internal)?.rev()
            {
                items.push(decode(entry.map_err(internal)?.1.value(), "delivery")?);
                if items.len() > limit {
                    break;
                }
            }
            let next = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|attempt| attempt.id)
            } else {
                None
            };
            Ok(DeliveryPage { items, next })
        })
        .await
    }
}

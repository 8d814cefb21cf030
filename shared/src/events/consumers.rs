//! The consumers of domain events. Each is idempotent by event id: the
//! log stores an event under its id, and an invalidation done twice only
//! costs a cache miss.

use std::sync::Arc;

use async_trait::async_trait;

use super::envelope::{Event, EventData};
use crate::app::App;
use crate::handlers::{categories, products};

/// Why a delivery failed; it is retried (in AWS by EventBridge, then the
/// consumer's DLQ; locally by [`super::dispatch`] until it succeeds).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConsumerError(pub String);

/// Something that reacts to domain events.
#[async_trait]
pub trait Consumer: Send + Sync {
    /// The consumer's name in logs, metrics and the template
    /// (`events-record`, `events-invalidate-cache`).
    fn name(&self) -> &'static str;

    async fn consume(&self, event: &Event) -> Result<(), ConsumerError>;
}

/// Keeps every event in the admin event log (`GET /api/events`).
pub struct EventLog {
    app: Arc<App>,
}

impl EventLog {
    pub fn new(app: Arc<App>) -> Self {
        EventLog { app }
    }
}

#[async_trait]
impl Consumer for EventLog {
    fn name(&self) -> &'static str {
        "events-record"
    }

    async fn consume(&self, event: &Event) -> Result<(), ConsumerError> {
        self.app.store.record_event(event).await.map_err(|e| ConsumerError(e.to_string()))
    }
}

/// Invalidates the cache scopes a catalog change touched. The write path
/// invalidates them at once; this redoes it from the change feed, so an
/// invalidation lost to a cache outage is made as soon as the cache is
/// back: it writes past the cache's breaker, which keeps the readers off
/// the cache for its cool-down, so the invalidation lands first.
pub struct CacheInvalidation {
    app: Arc<App>,
}

impl CacheInvalidation {
    pub fn new(app: Arc<App>) -> Self {
        CacheInvalidation { app }
    }
}

#[async_trait]
impl Consumer for CacheInvalidation {
    fn name(&self) -> &'static str {
        "events-invalidate-cache"
    }

    async fn consume(&self, event: &Event) -> Result<(), ConsumerError> {
        for scope in cache_scopes(event) {
            self.app.invalidations.try_invalidate(&scope).await.map_err(|e| ConsumerError(e.to_string()))?;
        }
        Ok(())
    }
}

/// The cache scopes whose entries an event makes stale.
pub fn cache_scopes(event: &Event) -> Vec<String> {
    let product = |id| vec![products::product_scope(id), products::LIST_SCOPE.to_owned()];
    match &event.data {
        EventData::ProductCreated(p) | EventData::ProductDeleted(p) => product(p.product_id),
        // An order's stock change leaves cached listings alone: a listing's
        // stock is as of its page's fill (at most the listing TTL old). A
        // sell-out or a restock does empty them, so `inStock` stays right.
        EventData::ProductUpdated(p) if stock_moved_within_availability(p) => {
            vec![products::product_scope(p.product_id)]
        }
        EventData::ProductUpdated(p) => product(p.product_id),
        EventData::CategoryCreated(_) => vec![categories::CACHE_SCOPE.to_owned()],
        // Always beside the `product.updated` of the same stock change.
        EventData::ProductStockLow(_) => Vec::new(),
        // Orders change stock through their products' own change records.
        EventData::UserRegistered(_)
        | EventData::OrderPlaced(_)
        | EventData::OrderStatusChanged(_)
        | EventData::OrderCancelled(_)
        | EventData::OrderExpired(_)
        | EventData::OrderPaid(_)
        | EventData::OrderPaymentFailed(_)
        | EventData::OrderRefunded(_) => Vec::new(),
    }
}

/// Whether only the stock changed, and it neither reached nor left zero.
fn stock_moved_within_availability(update: &crate::events::envelope::ProductUpdated) -> bool {
    let Some(stock) = update.changes.get("stock") else { return false };
    let in_stock = |units: &serde_json::Value| units.as_u64().is_some_and(|n| n > 0);
    update.changes.len() == 1 && in_stock(&stock.old) && in_stock(&stock.new)
}

/// Settles what a cancelled or expired order owes Stripe: the refund of a
/// paid order (made once, never more than was paid, then `refunded`), or
/// the cancellation of its open PaymentIntent. Only with payments on.
pub struct PaymentSettlement {
    app: Arc<App>,
}

impl PaymentSettlement {
    pub fn new(app: Arc<App>) -> Self {
        PaymentSettlement { app }
    }
}

#[async_trait]
impl Consumer for PaymentSettlement {
    fn name(&self) -> &'static str {
        "payments-refund"
    }

    async fn consume(&self, event: &Event) -> Result<(), ConsumerError> {
        let (EventData::OrderCancelled(change) | EventData::OrderExpired(change)) = &event.data else { return Ok(()) };
        let Some(payments) = &self.app.payments else { return Ok(()) };
        match crate::payments::after_order_closed(&self.app, payments, change.order_id).await {
            Ok(()) => Ok(()),
            Err(crate::payments::PaymentError::Store(crate::store::StoreError::NotFound)) => Ok(()),
            Err(err) => Err(ConsumerError(err.to_string())),
        }
    }
}

/// The consumers every deployment runs, in process (`shop-local`) or one
/// function each (AWS); the payment settlement only with payments on.
pub fn standard(app: &Arc<App>) -> Vec<Arc<dyn Consumer>> {
    let mut consumers = all(app);
    consumers.retain(|consumer| app.payments.is_some() || consumer.name() != "payments-refund");
    consumers
}

fn all(app: &Arc<App>) -> Vec<Arc<dyn Consumer>> {
    vec![
        Arc::new(EventLog::new(Arc::clone(app))),
        Arc::new(CacheInvalidation::new(Arc::clone(app))),
        Arc::new(PaymentSettlement::new(Arc::clone(app))),
    ]
}

/// The consumer called `name`, for a consumer function (the payment
/// settlement's does nothing while payments are off).
pub fn by_name(app: &Arc<App>, name: &str) -> Option<Arc<dyn Consumer>> {
    all(app).into_iter().find(|consumer| consumer.name() == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::ProductId;
    use crate::events::envelope::{FieldChange, ProductUpdated};
    use crate::events::{EventData, SCHEMA_VERSION};

    fn updated(changes: &[(&str, serde_json::Value, serde_json::Value)]) -> (ProductId, Event) {
        let product_id = ProductId::new();
        let changes: BTreeMap<String, FieldChange> = changes
            .iter()
            .map(|(field, old, new)| ((*field).to_owned(), FieldChange { old: old.clone(), new: new.clone() }))
            .collect();
        let data = EventData::ProductUpdated(ProductUpdated { product_id, name: "Mug".into(), changes });
        (
            product_id,
            Event { id: Uuid::now_v7(), schema_version: SCHEMA_VERSION, occurred_at: OffsetDateTime::now_utc(), data },
        )
    }

    #[test]
    fn an_orders_stock_change_keeps_cached_listings_and_empties_the_product_page() {
        let (id, event) = updated(&[("stock", json!(9), json!(7))]);
        assert_eq!(cache_scopes(&event), [products::product_scope(id)]);
    }

    #[test]
    fn a_sell_out_or_a_restock_empties_the_listings_too() {
        for (old, new) in [(1, 0), (0, 5)] {
            let (id, event) = updated(&[("stock", json!(old), json!(new))]);
            assert_eq!(cache_scopes(&event), [products::product_scope(id), products::LIST_SCOPE.to_owned()]);
        }
    }

    #[test]
    fn a_price_or_name_change_empties_the_listings_even_beside_a_stock_change() {
        for changes in [
            vec![("price", json!(10.0), json!(12.5))],
            vec![("name", json!("Mug"), json!("Cup"))],
            vec![("stock", json!(9), json!(7)), ("price", json!(10.0), json!(12.5))],
        ] {
            let (id, event) = updated(&changes);
            assert_eq!(cache_scopes(&event), [products::product_scope(id), products::LIST_SCOPE.to_owned()]);
        }
    }
}

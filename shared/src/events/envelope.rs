//! The event envelope and every event type's `data`: what the event log
//! stores, what goes on the EventBridge bus, and what webhooks will post.
//! `events.schema.json` at the root of the repository describes the same
//! shapes; `tests/event_schema.rs` holds the two together.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Money, OrderId, OrderItem, OrderSource, OrderStatus, PaymentStatus, ProductId, Role, UserId};

/// The envelope's `schemaVersion`. Adding a field to a `data` keeps it;
/// removing or retyping one moves it on.
pub const SCHEMA_VERSION: u32 = 1;

/// How long the admin event log keeps an event (the table's TTL in AWS).
pub const LOG_RETENTION: time::Duration = time::Duration::days(30);

/// One domain event: something that happened to a user, the catalog or an
/// order, told once per change. `id` is derived from the change, so every
/// redelivery of the same change carries the same id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Uuid,
    pub schema_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// `type` and `data`, side by side in the JSON.
    #[serde(flatten)]
    pub data: EventData,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }
}

/// What happened, with its facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    #[serde(rename = "user.registered")]
    UserRegistered(UserRegistered),
    #[serde(rename = "category.created")]
    CategoryCreated(CategoryCreated),
    #[serde(rename = "product.created")]
    ProductCreated(ProductSnapshot),
    #[serde(rename = "product.updated")]
    ProductUpdated(ProductUpdated),
    #[serde(rename = "product.deleted")]
    ProductDeleted(ProductSnapshot),
    #[serde(rename = "product.stock_low")]
    ProductStockLow(StockLow),
    #[serde(rename = "order.placed")]
    OrderPlaced(OrderPlaced),
    #[serde(rename = "order.status_changed")]
    OrderStatusChanged(StatusChange),
    #[serde(rename = "order.cancelled")]
    OrderCancelled(StatusChange),
    #[serde(rename = "order.expired")]
    OrderExpired(StatusChange),
    #[serde(rename = "order.paid")]
    OrderPaid(PaymentChange),
    #[serde(rename = "order.payment_failed")]
    OrderPaymentFailed(PaymentChange),
    #[serde(rename = "order.refunded")]
    OrderRefunded(PaymentChange),
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            EventData::UserRegistered(_) => EventType::UserRegistered,
            EventData::CategoryCreated(_) => EventType::CategoryCreated,
            EventData::ProductCreated(_) => EventType::ProductCreated,
            EventData::ProductUpdated(_) => EventType::ProductUpdated,
            EventData::ProductDeleted(_) => EventType::ProductDeleted,
            EventData::ProductStockLow(_) => EventType::ProductStockLow,
            EventData::OrderPlaced(_) => EventType::OrderPlaced,
            EventData::OrderStatusChanged(_) => EventType::OrderStatusChanged,
            EventData::OrderCancelled(_) => EventType::OrderCancelled,
            EventData::OrderExpired(_) => EventType::OrderExpired,
            EventData::OrderPaid(_) => EventType::OrderPaid,
            EventData::OrderPaymentFailed(_) => EventType::OrderPaymentFailed,
            EventData::OrderRefunded(_) => EventType::OrderRefunded,
        }
    }
}

/// An event's `type`, for filters and subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    UserRegistered,
    CategoryCreated,
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    ProductStockLow,
    OrderPlaced,
    OrderStatusChanged,
    OrderCancelled,
    OrderExpired,
    OrderPaid,
    OrderPaymentFailed,
    OrderRefunded,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::UserRegistered,
        EventType::CategoryCreated,
        EventType::ProductCreated,
        EventType::ProductUpdated,
        EventType::ProductDeleted,
        EventType::ProductStockLow,
        EventType::OrderPlaced,
        EventType::OrderStatusChanged,
        EventType::OrderCancelled,
        EventType::OrderExpired,
        EventType::OrderPaid,
        EventType::OrderPaymentFailed,
        EventType::OrderRefunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRegistered => "user.registered",
            EventType::CategoryCreated => "category.created",
            EventType::ProductCreated => "product.created",
            EventType::ProductUpdated => "product.updated",
            EventType::ProductDeleted => "product.deleted",
            EventType::ProductStockLow => "product.stock_low",
            EventType::OrderPlaced => "order.placed",
            EventType::OrderStatusChanged => "order.status_changed",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderExpired => "order.expired",
            EventType::OrderPaid => "order.paid",
            EventType::OrderPaymentFailed => "order.payment_failed",
            EventType::OrderRefunded => "order.refunded",
        }
    }

    pub fn parse(raw: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `user.registered`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// `category.created`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryCreated {
    pub category_id: Uuid,
    pub name: String,
    pub description: String,
}

/// `product.created` (the new product) and `product.deleted` (the product
/// as it was).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub product_id: ProductId,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category: String,
    pub stock: u64,
}

/// `product.updated`: every field that changed, with its old and new value
/// (`name`, `description`, `price`, `category`, `stock`). An order's stock
/// reservation is a change of `stock` like an admin's adjustment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    pub product_id: ProductId,
    /// The name after the change.
    pub name: String,
    pub changes: BTreeMap<String, FieldChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// `product.stock_low`: the stock went from at least `threshold` to below
/// it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockLow {
    pub product_id: ProductId,
    pub name: String,
    pub stock: u64,
    pub threshold: u64,
}

/// One line of an order in an event: the price is the unit price the order
/// was placed at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLine {
    pub product_id: ProductId,
    pub product_name: String,
    pub quantity: u64,
    pub price: Money,
}

impl From<&OrderItem> for EventLine {
    fn from(item: &OrderItem) -> Self {
        EventLine {
            product_id: item.product_id,
            product_name: item.product_name.clone(),
            quantity: item.quantity,
            price: item.price(),
        }
    }
}

/// `order.placed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub items: Vec<EventLine>,
    pub total_amount: Money,
    pub status: OrderStatus,
    /// `cart` for a checkout, `api` for `POST /api/orders`. Defaulted so
    /// that an event queued before the field existed still reads.
    #[serde(default)]
    pub source: OrderSource,
}

/// `order.status_changed`, `order.cancelled` and `order.expired`: the one
/// status change, who made it, and the order's lines (for a cancelled or
/// expired order, the units that went back to stock).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub from: OrderStatus,
    pub to: OrderStatus,
    /// `null` only for changes stored before the actor was recorded.
    pub by: Option<Actor>,
    pub items: Vec<EventLine>,
}

/// `order.paid`, `order.payment_failed` and `order.refunded`: the order's
/// payment as it stands after the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentChange {
    pub order_id: OrderId,
    pub user_id: UserId,
    /// The order's fulfilment status after the change.
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    /// The PaymentIntent the change is about.
    pub payment_intent: Option<String>,
    /// The order's total: what was paid, failed or refunded.
    pub amount: Money,
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum Actor {
    /// A signed-in user (the order's owner, or an admin).
    User { user_id: UserId, role: Role },
    /// The API itself, e.g. `reservation-expiry`.
    System { process: String },
}

impl Actor {
    /// The reservation expiry.
    pub fn reservation_expiry() -> Actor {
        Actor::System { process: "reservation-expiry".into() }
    }

    /// The stored form, one string: `admin:<id>`, `customer:<id>` or
    /// `system:<process>`.
    pub fn to_stored(&self) -> String {
        match self {
            Actor::User { user_id, role } => format!("{}:{user_id}", role.as_str()),
            Actor::System { process } => format!("system:{process}"),
        }
    }

    pub fn from_stored(stored: &str) -> Option<Actor> {
        let (kind, rest) = stored.split_once(':')?;
        match kind {
            "system" if !rest.is_empty() => Some(Actor::System { process: rest.to_owned() }),
            role => Some(Actor::User { user_id: UserId::parse(rest)?, role: Role::parse(role)? }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name() {
        for event_type in EventType::ALL {
            assert_eq!(EventType::parse(event_type.as_str()), Some(event_type));
        }
        assert_eq!(EventType::parse("order.shipped"), None);
    }

    #[test]
    fn actors_survive_their_stored_form() {
        for actor in [
            Actor::User { user_id: UserId::new(), role: Role::Admin },
            Actor::User { user_id: UserId::new(), role: Role::Customer },
            Actor::reservation_expiry(),
        ] {
            assert_eq!(Actor::from_stored(&actor.to_stored()), Some(actor));
        }
        for garbage in ["", "admin", "admin:nope", "root:0193a1c2-7d4e-7b10-9a3f-5c6d7e8f9a0b", "system:"] {
            assert_eq!(Actor::from_stored(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_envelope_puts_type_and_data_beside_the_id() {
        let event = Event {
            id: Uuid::nil(),
            schema_version: SCHEMA_VERSION,
            occurred_at: time::macros::datetime!(2026-11-26 12:00 UTC),
            data: EventData::ProductStockLow(StockLow {
                product_id: ProductId(Uuid::nil()),
                name: "Mug".into(),
                stock: 3,
                threshold: 5,
            }),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "product.stock_low");
        assert_eq!(json["schemaVersion"], 1);
        assert_eq!(json["occurredAt"], "2026-11-26T12:00:00Z");
        assert_eq!(json["data"]["stock"], 3);
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}

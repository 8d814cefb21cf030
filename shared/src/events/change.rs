//! The one mapping from a stored change to domain events.
//!
//! Each store records its changes as old and new images of what it wrote,
//! in the same atomic write (DynamoDB Streams; the embedded store's
//! outbox). The adapters decode those images into [`Change`]s; from there
//! [`events_of`] decides what happened, the same code in the
//! `events-publish` Lambda, the local stream poller and the outbox drain.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::envelope::{
    Actor, CategoryCreated, Event, EventData, EventLine, FieldChange, OrderPlaced, PaymentChange, ProductSnapshot,
    ProductUpdated, SCHEMA_VERSION, StatusChange, StockLow, UserRegistered,
};
use crate::domain::{Category, Order, OrderStatus, PaymentStatus, Product, User};

/// A stored record whose changes can mean something.
#[derive(Clone, Debug, PartialEq)]
pub enum Entity {
    User(User),
    Category(Category),
    Product(Product),
    /// An order and who last changed it (`None` for records stored before
    /// the actor was).
    Order {
        order: Order,
        changed_by: Option<Actor>,
    },
}

/// One write of one record, as the store's change feed tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Unique per change and the same on every redelivery of it (the
    /// stream record's `eventID`, the outbox entry's id): event ids are
    /// derived from it.
    pub id: String,
    /// When the store recorded the change; the time of a deletion, which
    /// has no record left to carry one.
    pub at: OffsetDateTime,
    pub old: Option<Entity>,
    pub new: Option<Entity>,
}

/// What the mapping needs to know beyond the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// `product.stock_low` when a product's stock goes from at least this
    /// to below it (`LOW_STOCK_THRESHOLD`, default 5).
    pub low_stock_threshold: u64,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping { low_stock_threshold: 5 }
    }
}

/// Namespace of the event ids (UUID v5 of the change id and the type).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_9c3e_52a4_4b8e_9f0d_3a7c_2e41_b5d6);

/// The events one change means: none (a write that changed nothing an
/// event tells, or a record no event is about), one, or two (a product
/// update that also took the stock below the threshold).
pub fn events_of(change: &Change, mapping: &Mapping) -> Vec<Event> {
    let mut out = Vec::new();
    let mut emit = |at: OffsetDateTime, data: EventData| {
        let id = Uuid::new_v5(&EVENT_ID_NAMESPACE, format!("{}/{}", change.id, data.event_type()).as_bytes());
        out.push(Event { id, schema_version: SCHEMA_VERSION, occurred_at: at, data });
    };
    match (&change.old, &change.new) {
        (None, Some(Entity::User(user))) => emit(
            user.created_at,
            EventData::UserRegistered(UserRegistered {
                user_id: user.id,
                email: user.email.as_str().to_owned(),
                name: user.name.as_str().to_owned(),
                role: user.role,
            }),
        ),
        (None, Some(Entity::Category(category))) => emit(
            category.created_at,
            EventData::CategoryCreated(CategoryCreated {
                category_id: category.id,
                name: category.name.as_str().to_owned(),
                description: category.description.as_str().to_owned(),
            }),
        ),
        (None, Some(Entity::Product(product))) => {
            emit(product.created_at, EventData::ProductCreated(snapshot(product)));
        }
        (Some(Entity::Product(old)), Some(Entity::Product(new))) => {
            let changes = product_changes(old, new);
            if !changes.is_empty() {
                let data = ProductUpdated { product_id: new.id, name: new.name.as_str().to_owned(), changes };
                emit(new.updated_at, EventData::ProductUpdated(data));
            }
            let threshold = mapping.low_stock_threshold;
            if old.stock >= threshold && new.stock < threshold {
                let data =
                    StockLow { product_id: new.id, name: new.name.as_str().to_owned(), stock: new.stock, threshold };
                emit(new.updated_at, EventData::ProductStockLow(data));
            }
        }
        (Some(Entity::Product(old)), None) => emit(change.at, EventData::ProductDeleted(snapshot(old))),
        (None, Some(Entity::Order { order, .. })) => emit(
            order.created_at,
            EventData::OrderPlaced(OrderPlaced {
                order_id: order.id,
                user_id: order.user_id,
                items: order.items.iter().map(EventLine::from).collect(),
                total_amount: order.total_amount,
                status: order.status,
                source: order.source,
            }),
        ),
        (Some(Entity::Order { order: old, .. }), Some(Entity::Order { order: new, changed_by })) => {
            if old.status != new.status {
                let data = StatusChange {
                    order_id: new.id,
                    user_id: new.user_id,
                    from: old.status,
                    to: new.status,
                    by: changed_by.clone(),
                    items: new.items.iter().map(EventLine::from).collect(),
                };
                let data = match new.status {
                    OrderStatus::Cancelled => EventData::OrderCancelled(data),
                    OrderStatus::Expired => EventData::OrderExpired(data),
                    _ => EventData::OrderStatusChanged(data),
                };
                emit(new.updated_at, data);
            }
            if old.payment.status != new.payment.status {
                let data = PaymentChange {
                    order_id: new.id,
                    user_id: new.user_id,
                    status: new.status,
                    payment_status: new.payment.status,
                    payment_intent: new.payment.intent_id.clone(),
                    amount: new.total_amount,
                };
                match new.payment.status {
                    PaymentStatus::Paid => emit(new.updated_at, EventData::OrderPaid(data)),
                    PaymentStatus::Failed => emit(new.updated_at, EventData::OrderPaymentFailed(data)),
                    PaymentStatus::Refunded => emit(new.updated_at, EventData::OrderRefunded(data)),
                    // Steps on the way: no event of their own.
                    PaymentStatus::Unpaid | PaymentStatus::RequiresAction | PaymentStatus::RefundPending => {}
                }
            }
        }
        // Profile edits, role changes, logins: no event types (yet).
        _ => {}
    }
    out
}

fn snapshot(product: &Product) -> ProductSnapshot {
    ProductSnapshot {
        product_id: product.id,
        name: product.name.as_str().to_owned(),
        description: product.description.as_str().to_owned(),
        price: product.price,
        category: product.category.as_str().to_owned(),
        stock: product.stock,
    }
}

/// The fields a client sees that differ; `updatedAt` alone is no change.
fn product_changes(old: &Product, new: &Product) -> BTreeMap<String, FieldChange> {
    let mut changes = BTreeMap::new();
    let mut compare = |field: &str, old: serde_json::Value, new: serde_json::Value| {
        if old != new {
            changes.insert(field.to_owned(), FieldChange { old, new });
        }
    };
    compare("name", json!(old.name.as_str()), json!(new.name.as_str()));
    compare("description", json!(old.description.as_str()), json!(new.description.as_str()));
    compare("price", json!(old.price), json!(new.price));
    compare("category", json!(old.category.as_str()), json!(new.category.as_str()));
    compare("stock", json!(old.stock), json!(new.stock));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CategoryName, Description, Email, Money, OrderId, OrderItem, ProductId, ProductName, Role, UserId, UserName,
        UserStatus,
    };
    use crate::events::EventType;

    fn product(stock: u64, price: u64) -> Product {
        let at = time::macros::datetime!(2026-11-26 12:00 UTC);
        Product {
            id: ProductId(Uuid::from_u128(7)),
            name: ProductName::parse("Mug").unwrap(),
            description: Description::parse("Holds tea.").unwrap(),
            price: Money::from_minor(price),
            category: CategoryName::parse("Kitchen").unwrap(),
            stock,
            stock_counters: 1,
            created_at: at,
            updated_at: at,
        }
    }

    fn order(status: OrderStatus) -> Order {
        let at = time::macros::datetime!(2026-11-26 12:00 UTC);
        Order {
            id: OrderId(Uuid::from_u128(9)),
            user_id: UserId(Uuid::from_u128(3)),
            items: vec![OrderItem {
                product_id: ProductId(Uuid::from_u128(7)),
                product_name: "Mug".into(),
                quantity: 2,
                price_minor: 950,
            }],
            total_amount: Money::from_minor(1900),
            status,
            source: crate::domain::OrderSource::Cart,
            payment: crate::domain::Payment::default(),
            created_at: at,
            updated_at: at,
        }
    }

    fn change(id: &str, old: Option<Entity>, new: Option<Entity>) -> Change {
        Change { id: id.into(), at: time::macros::datetime!(2026-11-26 13:00 UTC), old, new }
    }

    fn types(events: &[Event]) -> Vec<EventType> {
        events.iter().map(Event::event_type).collect()
    }

    #[test]
    fn a_price_change_names_the_field_with_both_values() {
        let events = events_of(
            &change("c1", Some(Entity::Product(product(50, 1000))), Some(Entity::Product(product(50, 1500)))),
            &Mapping::default(),
        );
        assert_eq!(types(&events), [EventType::ProductUpdated]);
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["data"]["changes"], json!({"price": {"old": 10.0, "new": 15.0}}));
    }

    #[test]
    fn stock_going_below_the_threshold_is_also_stock_low_but_not_once_below() {
        let mapping = Mapping { low_stock_threshold: 5 };
        let crossing = change("c2", Some(Entity::Product(product(6, 1000))), Some(Entity::Product(product(4, 1000))));
        assert_eq!(types(&events_of(&crossing, &mapping)), [EventType::ProductUpdated, EventType::ProductStockLow]);
        let below = change("c3", Some(Entity::Product(product(4, 1000))), Some(Entity::Product(product(3, 1000))));
        assert_eq!(types(&events_of(&below, &mapping)), [EventType::ProductUpdated]);
        let exactly = change("c4", Some(Entity::Product(product(5, 1000))), Some(Entity::Product(product(4, 1000))));
        assert_eq!(types(&events_of(&exactly, &mapping)), [EventType::ProductUpdated, EventType::ProductStockLow]);
    }

    #[test]
    fn a_write_that_changed_no_visible_field_is_no_event() {
        let mut touched = product(5, 1000);
        touched.updated_at += time::Duration::seconds(1);
        let events = events_of(
            &change("c5", Some(Entity::Product(product(5, 1000))), Some(Entity::Product(touched))),
            &Mapping::default(),
        );
        assert!(events.is_empty());
    }

    #[test]
    fn ids_are_stable_per_change_and_distinct_across_changes_and_types() {
        let crossing =
            || change("c6", Some(Entity::Product(product(6, 1000))), Some(Entity::Product(product(1, 1000))));
        let first = events_of(&crossing(), &Mapping::default());
        let again = events_of(&crossing(), &Mapping::default());
        assert_eq!(first, again, "a redelivered change yields the same events");
        assert_ne!(first[0].id, first[1].id);
        let other = events_of(&Change { id: "c7".into(), ..crossing() }, &Mapping::default());
        assert_ne!(first[0].id, other[0].id);
    }

    #[test]
    fn payment_changes_tell_paid_failed_and_refunded_beside_any_status_change() {
        use crate::domain::{Payment, PaymentStatus};
        let with = |status: OrderStatus, payment: PaymentStatus| Entity::Order {
            order: Order {
                payment: Payment { status: payment, intent_id: Some("pi_1".into()), attempts: 1 },
                ..order(status)
            },
            changed_by: Some(Actor::System { process: "payments".into() }),
        };
        let paid = events_of(
            &change(
                "p1",
                Some(with(OrderStatus::Pending, PaymentStatus::Unpaid)),
                Some(with(OrderStatus::Confirmed, PaymentStatus::Paid)),
            ),
            &Mapping::default(),
        );
        assert_eq!(types(&paid), [EventType::OrderStatusChanged, EventType::OrderPaid]);
        let json = serde_json::to_value(&paid[1]).unwrap();
        assert_eq!(json["data"]["paymentIntent"], "pi_1");
        assert_eq!(json["data"]["amount"], 19.0);
        let failed = events_of(
            &change(
                "p2",
                Some(with(OrderStatus::Pending, PaymentStatus::Unpaid)),
                Some(with(OrderStatus::Pending, PaymentStatus::Failed)),
            ),
            &Mapping::default(),
        );
        assert_eq!(types(&failed), [EventType::OrderPaymentFailed]);
        let cancelled = events_of(
            &change(
                "p3",
                Some(with(OrderStatus::Confirmed, PaymentStatus::Paid)),
                Some(with(OrderStatus::Cancelled, PaymentStatus::RefundPending)),
            ),
            &Mapping::default(),
        );
        assert_eq!(types(&cancelled), [EventType::OrderCancelled], "refund_pending is a step, not an event");
        let refunded = events_of(
            &change(
                "p4",
                Some(with(OrderStatus::Cancelled, PaymentStatus::RefundPending)),
                Some(with(OrderStatus::Cancelled, PaymentStatus::Refunded)),
            ),
            &Mapping::default(),
        );
        assert_eq!(types(&refunded), [EventType::OrderRefunded]);
    }

    #[test]
    fn order_status_changes_say_from_to_and_by_whom() {
        let admin = Actor::User { user_id: UserId::new(), role: Role::Admin };
        let moved = |to, by: Option<Actor>| {
            let old = Entity::Order { order: order(OrderStatus::Pending), changed_by: None };
            let new = Entity::Order { order: Order { status: to, ..order(to) }, changed_by: by };
            events_of(&change("c8", Some(old), Some(new)), &Mapping::default())
        };
        assert_eq!(types(&moved(OrderStatus::Confirmed, Some(admin.clone()))), [EventType::OrderStatusChanged]);
        assert_eq!(types(&moved(OrderStatus::Cancelled, Some(admin.clone()))), [EventType::OrderCancelled]);
        let expired = moved(OrderStatus::Expired, Some(Actor::reservation_expiry()));
        assert_eq!(types(&expired), [EventType::OrderExpired]);
        let json = serde_json::to_value(&expired[0]).unwrap();
        assert_eq!(json["data"]["from"], "pending");
        assert_eq!(json["data"]["to"], "expired");
        assert_eq!(json["data"]["by"], json!({"kind": "system", "process": "reservation-expiry"}));
        assert_eq!(json["data"]["items"][0]["price"], 9.5);
    }

    #[test]
    fn creations_and_deletions_map_to_their_types() {
        let at = time::macros::datetime!(2026-11-26 12:00 UTC);
        let user = User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").unwrap(),
            name: UserName::parse("Ada").unwrap(),
            role: Role::Customer,
            status: UserStatus::Active,
            password_hash: "secret".into(),
            session_version: 0,
            created_at: at,
            updated_at: at,
        };
        let registered = events_of(&change("u", None, Some(Entity::User(user.clone()))), &Mapping::default());
        assert_eq!(types(&registered), [EventType::UserRegistered]);
        assert!(!serde_json::to_string(&registered).unwrap().contains("secret"), "never the password hash");
        let edited = change("u2", Some(Entity::User(user.clone())), Some(Entity::User(user)));
        assert!(events_of(&edited, &Mapping::default()).is_empty());
        let placed = change("o", None, Some(Entity::Order { order: order(OrderStatus::Pending), changed_by: None }));
        assert_eq!(types(&events_of(&placed, &Mapping::default())), [EventType::OrderPlaced]);
        let created = change("p", None, Some(Entity::Product(product(3, 100))));
        assert_eq!(types(&events_of(&created, &Mapping::default())), [EventType::ProductCreated]);
        let deleted = events_of(&change("d", Some(Entity::Product(product(3, 100))), None), &Mapping::default());
        assert_eq!(types(&deleted), [EventType::ProductDeleted]);
        assert_eq!(
            deleted[0].occurred_at,
            time::macros::datetime!(2026-11-26 13:00 UTC),
            "a deletion is dated by the store"
        );
    }
}

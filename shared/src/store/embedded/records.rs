//! The stored (JSON) forms of domain values in the embedded store.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Category, CategoryName, Description, Email, Money, Order, OrderId, OrderItem, OrderSource, OrderStatus, Payment,
    PaymentStatus, Product, ProductId, ProductName, Role, User, UserId, UserName, UserStatus,
};
use crate::events::Actor;
use crate::store::StoreError;

fn corrupt(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |e| StoreError::Internal(format!("corrupt {what} record: {e}"))
}

/// The stored form of a [`User`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserRecord {
    id: UserId,
    email: String,
    name: String,
    role: Role,
    /// Absent in records written before it existed: active.
    #[serde(default)]
    status: UserStatus,
    password_hash: String,
    /// Absent in records written before it existed: version 0.
    #[serde(default)]
    session_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&User> for UserRecord {
    fn from(user: &User) -> Self {
        UserRecord {
            id: user.id,
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            role: user.role,
            status: user.status,
            password_hash: user.password_hash.clone(),
            session_version: user.session_version,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

impl UserRecord {
    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Result<User, StoreError> {
        let corrupt = corrupt("user");
        let record: UserRecord = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(User {
            id: record.id,
            email: Email::parse(&record.email).map_err(&corrupt)?,
            name: UserName::parse(&record.name).map_err(&corrupt)?,
            role: record.role,
            status: record.status,
            password_hash: record.password_hash,
            session_version: record.session_version,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CategoryRecord {
    id: Uuid,
    name: String,
    description: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl CategoryRecord {
    pub(super) fn to_bytes(category: &Category) -> Result<Vec<u8>, StoreError> {
        let record = CategoryRecord {
            id: category.id,
            name: category.name.as_str().to_owned(),
            description: category.description.as_str().to_owned(),
            created_at: category.created_at,
        };
        serde_json::to_vec(&record).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Category, StoreError> {
        let corrupt = corrupt("category");
        let record: CategoryRecord = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(Category {
            id: record.id,
            name: CategoryName::parse(&record.name).map_err(&corrupt)?,
            description: Description::parse(&record.description).map_err(&corrupt)?,
            created_at: record.created_at,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProductRecord {
    id: ProductId,
    name: String,
    description: String,
    price_minor: u64,
    category: String,
    stock: u64,
    /// One store transaction serializes every order here, so the counters
    /// are kept as the admin's setting only (records before it: 1).
    #[serde(default = "one_counter")]
    stock_counters: u16,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

fn one_counter() -> u16 {
    1
}

impl ProductRecord {
    pub(super) fn to_bytes(product: &Product) -> Result<Vec<u8>, StoreError> {
        let record = ProductRecord {
            id: product.id,
            name: product.name.as_str().to_owned(),
            description: product.description.as_str().to_owned(),
            price_minor: product.price.minor(),
            category: product.category.as_str().to_owned(),
            stock: product.stock,
            stock_counters: product.stock_counters,
            created_at: product.created_at,
            updated_at: product.updated_at,
        };
        serde_json::to_vec(&record).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Product, StoreError> {
        let corrupt = corrupt("product");
        let record: ProductRecord = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(Product {
            id: record.id,
            name: ProductName::parse(&record.name).map_err(&corrupt)?,
            description: Description::parse(&record.description).map_err(&corrupt)?,
            price: Money::from_minor(record.price_minor),
            category: CategoryName::parse(&record.category).map_err(&corrupt)?,
            stock: record.stock,
            stock_counters: record.stock_counters,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderRecord {
    id: OrderId,
    user_id: UserId,
    items: Vec<OrderItem>,
    total_minor: u64,
    status: OrderStatus,
    /// Absent in orders stored before the source was recorded: `api`.
    #[serde(default)]
    source: OrderSource,
    /// Absent in orders stored before payments: unpaid, no intent.
    #[serde(default)]
    payment_status: PaymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payment_intent: Option<String>,
    #[serde(default)]
    payment_attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    /// Who made the last status change ([`Actor::to_stored`]); absent
    /// until the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changed_by: Option<String>,
}

impl OrderRecord {
    pub(super) fn to_bytes(order: &Order, changed_by: Option<&Actor>) -> Result<Vec<u8>, StoreError> {
        let record = OrderRecord {
            id: order.id,
            user_id: order.user_id,
            items: order.items.clone(),
            total_minor: order.total_amount.minor(),
            status: order.status,
            source: order.source,
            payment_status: order.payment.status,
            payment_intent: order.payment.intent_id.clone(),
            payment_attempts: order.payment.attempts,
            created_at: order.created_at,
            updated_at: order.updated_at,
            changed_by: changed_by.map(Actor::to_stored),
        };
        serde_json::to_vec(&record).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Order, StoreError> {
        Self::from_bytes_with_actor(bytes).map(|(order, _)| order)
    }

    /// The order and who made its last status change.
    pub(super) fn from_bytes_with_actor(bytes: &[u8]) -> Result<(Order, Option<Actor>), StoreError> {
        let record: OrderRecord = serde_json::from_slice(bytes).map_err(|e| corrupt("order")(e.to_string()))?;
        let changed_by = record.changed_by.as_deref().and_then(Actor::from_stored);
        let order = Order {
            id: record.id,
            user_id: record.user_id,
            items: record.items,
            total_amount: Money::from_minor(record.total_minor),
            status: record.status,
            source: record.source,
            payment: Payment {
                status: record.payment_status,
                intent_id: record.payment_intent,
                attempts: record.payment_attempts,
            },
            created_at: record.created_at,
            updated_at: record.updated_at,
        };
        Ok((order, changed_by))
    }
}

/// An `Idempotency-Key`'s state: claimed (with a lease), or completed with
/// the response to replay.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdempotencyRecord {
    pub fingerprint: String,
    pub token: String,
    pub lease_until: i64,
    pub expires_at: i64,
    pub response: Option<(u16, String)>,
}

impl IdempotencyRecord {
    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Internal(e.to_string()))
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| corrupt("idempotency")(e.to_string()))
    }
}

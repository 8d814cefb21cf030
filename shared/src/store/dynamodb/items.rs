//! Item <-> domain conversions and key builders for the one table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{
    Category, CategoryName, Description, Email, Money, Order, OrderId, OrderItem, OrderSource, OrderStatus, Payment,
    PaymentStatus, Product, ProductId, ProductName, Role, User, UserId, UserName, UserStatus,
};
use crate::store::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// A primary key (`PK`, `SK`).
pub(super) struct Key {
    pk: String,
    sk: &'static str,
}

impl Key {
    pub fn user(id: UserId) -> Self {
        Key { pk: format!("USER#{id}"), sk: "PROFILE" }
    }

    pub fn email(email: &Email) -> Self {
        Key { pk: format!("EMAIL#{email}"), sk: "EMAIL" }
    }

    pub fn revoked_token(jti: &str) -> Self {
        Key { pk: format!("TOKEN#{jti}"), sk: "REVOKED" }
    }

    pub fn category(key: &str) -> Self {
        Key { pk: format!("CATEGORY#{key}"), sk: "CATEGORY" }
    }

    pub fn product(id: ProductId) -> Self {
        Key { pk: format!("PRODUCT#{id}"), sk: "PRODUCT" }
    }

    /// One of the counters holding a counted product's units, each its own
    /// partition (see `stock`).
    pub fn stock_counter(id: ProductId, counter: u16) -> Self {
        Key { pk: format!("STOCK#{id}#{counter}"), sk: "STOCK" }
    }

    /// A product's listing entry (see [`listing_item`]).
    pub fn product_listing(id: ProductId) -> Self {
        Key { pk: format!("PRODUCT#{id}"), sk: "LISTING" }
    }

    pub fn order(id: OrderId) -> Self {
        Key { pk: format!("ORDER#{id}"), sk: "ORDER" }
    }

    /// A user's cart: `expiresAt` is the table's TTL attribute.
    pub fn cart(user_id: UserId) -> Self {
        Key { pk: format!("CART#{user_id}"), sk: "CART" }
    }

    /// A payment provider's event already applied (kept with a TTL).
    pub fn payment_event(id: &str) -> Self {
        Key { pk: format!("PAYMENT_EVENT#{id}"), sk: "PAYMENT_EVENT" }
    }

    pub fn idempotency(user_id: UserId, key: &str) -> Self {
        Key { pk: format!("IDEMPOTENCY#{user_id}#{key}"), sk: "IDEMPOTENCY" }
    }

    /// The count of active admins (`active`), kept in the same transaction
    /// as every change to it, so the last one cannot be removed.
    pub fn admin_count() -> Self {
        Key { pk: "ADMINS".into(), sk: "COUNT" }
    }

    pub fn event(id: uuid::Uuid) -> Self {
        Key { pk: format!("EVENT#{id}"), sk: "EVENT" }
    }

    /// A key no item has: reading it proves the table answers.
    pub fn health() -> Self {
        Key { pk: "HEALTH".into(), sk: "HEALTH" }
    }

    pub fn into_item(self) -> Item {
        HashMap::from([
            ("PK".to_owned(), AttributeValue::S(self.pk)),
            ("SK".to_owned(), AttributeValue::S(self.sk.to_owned())),
        ])
    }
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn timestamp(at: OffsetDateTime) -> AttributeValue {
    s(at.format(&Rfc3339).unwrap_or_default())
}

/// A string attribute; a missing or mistyped one means a corrupt item.
pub(super) fn attr_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Internal(format!("item attribute {name} is missing or not a string"))),
    }
}

/// A whole-number attribute.
pub(super) fn attr_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => {
            value.parse().map_err(|_| StoreError::Internal(format!("item attribute {name} is not a whole number")))
        }
        _ => Err(StoreError::Internal(format!("item attribute {name} is missing or not a number"))),
    }
}

pub(super) fn attr_time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(&attr_s(item, name)?, &Rfc3339)
        .map_err(|e| StoreError::Internal(format!("item attribute {name}: {e}")))
}

pub(super) fn user_to_item(user: &User) -> Item {
    let mut item = Key::user(user.id).into_item();
    item.extend([
        ("entity".to_owned(), s("user")),
        ("id".to_owned(), s(user.id.to_string())),
        ("email".to_owned(), s(user.email.as_str())),
        ("name".to_owned(), s(user.name.as_str())),
        ("role".to_owned(), s(user.role.as_str())),
        ("status".to_owned(), s(user.status.as_str())),
        // What the admin listing's prefix filter matches, case-insensitively.
        ("nameLower".to_owned(), s(user.name.as_str().to_lowercase())),
        ("GSI1PK".to_owned(), s(USERS_PARTITION)),
        ("GSI1SK".to_owned(), s(user.id.to_string())),
        ("passwordHash".to_owned(), s(user.password_hash.clone())),
        ("sessionVersion".to_owned(), AttributeValue::N(user.session_version.to_string())),
        ("createdAt".to_owned(), timestamp(user.created_at)),
        ("updatedAt".to_owned(), timestamp(user.updated_at)),
    ]);
    item
}

pub(super) fn user_from_item(item: &Item) -> Result<User, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Internal(format!("user item {what}: {e}"));
    Ok(User {
        id: UserId::parse(&attr_s(item, "id")?).ok_or_else(|| corrupt("id", "not a uuid".into()))?,
        email: Email::parse(&attr_s(item, "email")?).map_err(|e| corrupt("email", e))?,
        name: UserName::parse(&attr_s(item, "name")?).map_err(|e| corrupt("name", e))?,
        role: Role::parse(&attr_s(item, "role")?).ok_or_else(|| corrupt("role", "unknown".into()))?,
        status: user_status(item)?,
        password_hash: attr_s(item, "passwordHash")?,
        session_version: session_version(item)?,
        created_at: attr_time(item, "createdAt")?,
        updated_at: attr_time(item, "updatedAt")?,
    })
}

/// An order item's payment; orders stored before payments have none of its
/// attributes: unpaid, no intent.
fn payment_from_item(item: &Item) -> Result<Payment, StoreError> {
    let status = match item.get("paymentStatus") {
        None => PaymentStatus::Unpaid,
        Some(_) => PaymentStatus::parse(&attr_s(item, "paymentStatus")?)
            .ok_or_else(|| StoreError::Internal("order item paymentStatus: unknown".into()))?,
    };
    let intent_id = item.get("paymentIntent").map(|_| attr_s(item, "paymentIntent")).transpose()?;
    let attempts = match item.get("paymentAttempts") {
        None => 0,
        Some(_) => u32::try_from(attr_u64(item, "paymentAttempts")?)
            .map_err(|_| StoreError::Internal("order item paymentAttempts: too large".into()))?,
    };
    Ok(Payment { status, intent_id, attempts })
}

/// A user item's session version; users written before the attribute
/// existed are at version 0.
pub(super) fn session_version(item: &Item) -> Result<u32, StoreError> {
    match item.get("sessionVersion") {
        None => Ok(0),
        Some(_) => u32::try_from(attr_u64(item, "sessionVersion")?)
            .map_err(|_| StoreError::Internal("user item sessionVersion: out of range".into())),
    }
}

/// A user item's status; users written before the attribute existed are
/// active.
pub(super) fn user_status(item: &Item) -> Result<UserStatus, StoreError> {
    match item.get("status") {
        None => Ok(UserStatus::Active),
        Some(_) => UserStatus::parse(&attr_s(item, "status")?)
            .ok_or_else(|| StoreError::Internal("user item status: unknown".into())),
    }
}

pub(super) fn email_claim(email: &Email, owner: UserId) -> Item {
    let mut item = Key::email(email).into_item();
    item.extend([("entity".to_owned(), s("email")), ("userId".to_owned(), s(owner.to_string()))]);
    item
}

/// GSI1 lists every user newest first (UUID v7 ids).
pub(super) const USERS_PARTITION: &str = "USERS";
/// GSI1 lists every category by key.
pub(super) const CATEGORIES_PARTITION: &str = "CATEGORIES";
/// GSI1 lists every product newest first.
pub(super) const PRODUCTS_PARTITION: &str = "PRODUCTS";

/// GSI2's partition of one category.
pub(super) fn category_partition(key: &str) -> String {
    format!("CATEGORY#{key}")
}

/// GSI2's sort key: zero-padded price, so text order is price order.
pub(super) fn price_sort_key(price: u64, id: ProductId) -> String {
    format!("{price:012}#{id}")
}

pub(super) fn category_to_item(category: &Category) -> Item {
    let key = category.name.key();
    let mut item = Key::category(&key).into_item();
    item.extend([
        ("entity".to_owned(), s("category")),
        ("id".to_owned(), s(category.id.to_string())),
        ("name".to_owned(), s(category.name.as_str())),
        ("description".to_owned(), s(category.description.as_str())),
        ("createdAt".to_owned(), timestamp(category.created_at)),
        ("GSI1PK".to_owned(), s(CATEGORIES_PARTITION)),
        ("GSI1SK".to_owned(), s(key)),
    ]);
    item
}

pub(super) fn category_from_item(item: &Item) -> Result<Category, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Internal(format!("category item {what}: {e}"));
    Ok(Category {
        id: uuid::Uuid::parse_str(&attr_s(item, "id")?).map_err(|e| corrupt("id", e.to_string()))?,
        name: CategoryName::parse(&attr_s(item, "name")?).map_err(|e| corrupt("name", e))?,
        description: Description::parse(&attr_s(item, "description")?).map_err(|e| corrupt("description", e))?,
        created_at: attr_time(item, "createdAt")?,
    })
}

/// Every attribute of a product item; also what an update sets (all but
/// the keys, `createdAt`, `stock` and `stockCounters`). No index key: orders rewrite the
/// product item (its stock), and an index entry of it would take every
/// order of the shop into one index partition. Listings read the listing
/// entries instead ([`listing_item`]).
pub(super) fn product_attributes(product: &Product) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("entity", s("product")),
        ("id", s(product.id.to_string())),
        ("name", s(product.name.as_str())),
        ("description", s(product.description.as_str())),
        ("price", n(product.price.minor())),
        ("category", s(product.category.as_str())),
        ("categoryKey", s(product.category.key())),
        ("stock", n(product.stock)),
        ("stockCounters", n(product.stock_counters)),
        ("searchText", s(product.search_text())),
        ("createdAt", timestamp(product.created_at)),
        ("updatedAt", timestamp(product.updated_at)),
    ]
}

/// A product's listing entry: a copy of the product under the listing
/// indexes (GSI1 `PRODUCTS` newest first, GSI2 the category by price),
/// written with every catalog change (create, update, delete: in the same
/// request) and, from the change feed, when the stock reaches or leaves
/// zero; an order that leaves stock does not write it. So a listing's
/// stock is availability, as a search entry's is (see `search`).
/// `listedAt` (the copied state's `updatedAt` in nanoseconds) keeps an
/// older state from overwriting a newer one.
pub(super) fn listing_item(product: &Product) -> Item {
    let key = product.category.key();
    let mut item = Key::product_listing(product.id).into_item();
    item.extend(product_attributes(product).into_iter().map(|(name, value)| (name.to_owned(), value)));
    item.extend([
        ("entity".to_owned(), s("productListing")),
        ("listedAt".to_owned(), n(product.updated_at.unix_timestamp_nanos())),
        ("GSI1PK".to_owned(), s(PRODUCTS_PARTITION)),
        ("GSI1SK".to_owned(), s(product.id.to_string())),
        ("GSI2PK".to_owned(), s(category_partition(&key))),
        ("GSI2SK".to_owned(), s(price_sort_key(product.price.minor(), product.id))),
    ]);
    item
}

pub(super) fn product_to_item(product: &Product) -> Item {
    let mut item = Key::product(product.id).into_item();
    item.extend(product_attributes(product).into_iter().map(|(name, value)| (name.to_owned(), value)));
    item
}

pub(super) fn product_from_item(item: &Item) -> Result<Product, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Internal(format!("product item {what}: {e}"));
    Ok(Product {
        id: ProductId::parse(&attr_s(item, "id")?).ok_or_else(|| corrupt("id", "not a uuid".into()))?,
        name: ProductName::parse(&attr_s(item, "name")?).map_err(|e| corrupt("name", e))?,
        description: Description::parse(&attr_s(item, "description")?).map_err(|e| corrupt("description", e))?,
        price: Money::from_minor(attr_u64(item, "price")?),
        category: CategoryName::parse(&attr_s(item, "category")?).map_err(|e| corrupt("category", e))?,
        stock: attr_u64(item, "stock")?,
        stock_counters: stock_counters_of(item)?,
        created_at: attr_time(item, "createdAt")?,
        updated_at: attr_time(item, "updatedAt")?,
    })
}

/// A product item's counter count; items written before counters: 1.
pub(super) fn stock_counters_of(item: &Item) -> Result<u16, StoreError> {
    match item.get("stockCounters") {
        None => Ok(1),
        Some(_) => u16::try_from(attr_u64(item, "stockCounters")?)
            .map_err(|_| StoreError::Internal("item attribute stockCounters is out of range".into())),
    }
}

/// GSI1's partition of one user's orders.
pub(super) fn user_orders_partition(user_id: UserId) -> String {
    format!("ORDERS#USER#{user_id}")
}

/// GSI1 lists every logged event newest first.
pub(super) const EVENTS_PARTITION: &str = "EVENTS";

/// GSI2's partition of the logged events of one type.
pub(super) fn event_type_partition(event_type: crate::events::EventType) -> String {
    format!("EVENTS#{event_type}")
}

/// GSI2's partition of the orders in one status, before sharding: see
/// [`status_shard`].
pub(super) fn status_orders_partition(status: OrderStatus) -> String {
    format!("ORDERS#STATUS#{}", status.as_str())
}

/// The shard of GSI2's status partition that order `id` sits in, in any
/// status (see [`super::shards`]).
pub(super) fn status_shard(status: OrderStatus, id: OrderId) -> String {
    use super::shards::{STATUS_SHARDS, shard_of, sharded};
    sharded(&status_orders_partition(status), shard_of(id.0, STATUS_SHARDS))
}

/// An order item; `changedBy` (who made its last status change) is set by
/// the status change itself.
pub(super) fn order_to_item(order: &Order) -> Result<Item, StoreError> {
    let lines = serde_json::to_string(&order.items).map_err(|e| StoreError::Internal(e.to_string()))?;
    let mut item = Key::order(order.id).into_item();
    item.extend([
        ("entity".to_owned(), s("order")),
        ("id".to_owned(), s(order.id.to_string())),
        ("userId".to_owned(), s(order.user_id.to_string())),
        ("lines".to_owned(), s(lines)),
        ("totalAmount".to_owned(), n(order.total_amount.minor())),
        ("status".to_owned(), s(order.status.as_str())),
        ("source".to_owned(), s(order.source.as_str())),
        ("paymentStatus".to_owned(), s(order.payment.status.as_str())),
        ("paymentAttempts".to_owned(), n(order.payment.attempts)),
        ("createdAt".to_owned(), timestamp(order.created_at)),
        ("updatedAt".to_owned(), timestamp(order.updated_at)),
        ("GSI1PK".to_owned(), s(user_orders_partition(order.user_id))),
        ("GSI1SK".to_owned(), s(order.id.to_string())),
        ("GSI2PK".to_owned(), s(status_shard(order.status, order.id))),
        ("GSI2SK".to_owned(), s(order.id.to_string())),
    ]);
    if let Some(intent) = &order.payment.intent_id {
        item.insert("paymentIntent".to_owned(), s(intent.clone()));
    }
    Ok(item)
}

pub(super) fn order_from_item(item: &Item) -> Result<Order, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Internal(format!("order item {what}: {e}"));
    let items: Vec<OrderItem> =
        serde_json::from_str(&attr_s(item, "lines")?).map_err(|e| corrupt("lines", e.to_string()))?;
    Ok(Order {
        id: OrderId::parse(&attr_s(item, "id")?).ok_or_else(|| corrupt("id", "not a uuid".into()))?,
        user_id: UserId::parse(&attr_s(item, "userId")?).ok_or_else(|| corrupt("userId", "not a uuid".into()))?,
        items,
        total_amount: Money::from_minor(attr_u64(item, "totalAmount")?),
        status: OrderStatus::parse(&attr_s(item, "status")?).map_err(|e| corrupt("status", e))?,
        // Orders stored before the source was recorded have none: `api`.
        source: match item.get("source") {
            None => OrderSource::Api,
            Some(_) => {
                OrderSource::parse(&attr_s(item, "source")?).ok_or_else(|| corrupt("source", "unknown".into()))?
            }
        },
        payment: payment_from_item(item)?,
        created_at: attr_time(item, "createdAt")?,
        updated_at: attr_time(item, "updatedAt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_survives_the_round_trip_through_an_item() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let user = User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").unwrap(),
            name: UserName::parse("Ada").unwrap(),
            role: Role::Admin,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            status: UserStatus::Active,
            session_version: 0,
            created_at: now,
            updated_at: now,
        };
        let item = user_to_item(&user);
        assert_eq!(item["PK"], AttributeValue::S(format!("USER#{}", user.id)));
        assert_eq!(user_from_item(&item).unwrap(), user);
    }

    #[test]
    fn a_product_survives_the_round_trip_through_an_item() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let product = Product {
            id: ProductId::new(),
            name: ProductName::parse("Gaming Laptop").unwrap(),
            description: Description::parse("Fast.\nLight.").unwrap(),
            price: Money::from_minor(129_999),
            category: CategoryName::parse("Electronics").unwrap(),
            stock: 7,
            stock_counters: 1,
            created_at: now,
            updated_at: now,
        };
        let item = product_to_item(&product);
        assert!(!item.keys().any(|name| name.starts_with("GSI")), "orders rewrite it: in no index");
        assert_eq!(item["searchText"], AttributeValue::S(" gaming laptop fast light ".into()));
        assert_eq!(product_from_item(&item).unwrap(), product);
        let listed = listing_item(&product);
        assert_eq!(listed["SK"], AttributeValue::S("LISTING".into()));
        assert_eq!(listed["entity"], AttributeValue::S("productListing".into()));
        assert_eq!(listed["GSI1PK"], AttributeValue::S("PRODUCTS".into()));
        assert_eq!(listed["GSI2SK"], AttributeValue::S(format!("000000129999#{}", product.id)));
        assert_eq!(product_from_item(&listed).unwrap(), product);
    }

    #[test]
    fn an_order_survives_the_round_trip_through_an_item() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let order = Order {
            id: OrderId::new(),
            user_id: UserId::new(),
            items: vec![OrderItem {
                product_id: ProductId::new(),
                product_name: "Mug".into(),
                quantity: 2,
                price_minor: 950,
            }],
            total_amount: Money::from_minor(1900),
            status: OrderStatus::Confirmed,
            source: OrderSource::Cart,
            payment: Default::default(),
            created_at: now,
            updated_at: now,
        };
        let item = order_to_item(&order).unwrap();
        let shard = super::super::shards::shard_of(order.id.0, super::super::shards::STATUS_SHARDS);
        assert_eq!(item["GSI2PK"], AttributeValue::S(format!("ORDERS#STATUS#confirmed#{shard:02}")));
        assert_eq!(order_from_item(&item).unwrap(), order);
    }

    #[test]
    fn a_corrupt_item_is_an_error_not_a_panic() {
        let mut item = Key::user(UserId::new()).into_item();
        item.insert("id".into(), AttributeValue::N("7".into()));
        assert!(matches!(user_from_item(&item), Err(StoreError::Internal(_))));
    }
}

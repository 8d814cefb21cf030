//! Wire forms of domain values: what clients see.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{
    Cart, Category, Money, Order, OrderId, OrderSource, OrderStatus, PaymentStatus, PricedCart, Product, ProductId,
    Role, User, UserId, UserStatus,
};

/// A user as the API shows it: never the password hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id,
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            role: user.role,
            status: user.status,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A category as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryView {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Category> for CategoryView {
    fn from(category: &Category) -> Self {
        CategoryView {
            id: category.id,
            name: category.name.as_str().to_owned(),
            description: category.description.as_str().to_owned(),
            created_at: category.created_at,
        }
    }
}

/// A product as the API shows it; `price` a number with at most two
/// decimals.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub id: ProductId,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category: String,
    pub stock: u64,
    pub stock_counters: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Product> for ProductView {
    fn from(product: &Product) -> Self {
        ProductView {
            id: product.id,
            name: product.name.as_str().to_owned(),
            description: product.description.as_str().to_owned(),
            price: product.price,
            category: product.category.as_str().to_owned(),
            stock: product.stock,
            stock_counters: product.stock_counters,
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

/// One line of an order as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemView {
    pub product_id: ProductId,
    pub product_name: String,
    pub quantity: u64,
    /// Unit price when the order was placed.
    pub price: Money,
}

/// An order as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: OrderId,
    pub user_id: UserId,
    pub items: Vec<OrderItemView>,
    pub total_amount: Money,
    pub status: OrderStatus,
    /// `cart` for an order checked out from the cart, `api` otherwise.
    pub source: OrderSource,
    /// `unpaid`, `requires_action`, `paid`, `failed`, `refund_pending` or
    /// `refunded`; `unpaid` throughout when payments are off.
    pub payment_status: PaymentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        OrderView {
            id: order.id,
            user_id: order.user_id,
            items: order
                .items
                .iter()
                .map(|item| OrderItemView {
                    product_id: item.product_id,
                    product_name: item.product_name.clone(),
                    quantity: item.quantity,
                    price: item.price(),
                })
                .collect(),
            total_amount: order.total_amount,
            status: order.status,
            source: order.source,
            payment_status: order.payment.status,
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

/// A cart as the API shows it: every line priced from the catalog now.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    pub items: Vec<CartLineView>,
    /// Of the lines whose product still exists.
    pub subtotal: Money,
    /// Units in all lines.
    pub item_count: u64,
    /// What `If-Match` names; 0 for a cart never stored.
    pub version: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// One cart line as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLineView {
    pub product_id: ProductId,
    pub product_name: String,
    pub quantity: u64,
    /// `null` when the product was deleted.
    pub unit_price: Option<Money>,
    pub line_total: Option<Money>,
    /// Checkout would succeed for this line now.
    pub available: bool,
    /// Units in stock now; 0 for a deleted product.
    pub available_quantity: u64,
}

impl CartView {
    pub fn of(cart: &Cart, priced: &PricedCart) -> Self {
        CartView {
            items: priced
                .lines
                .iter()
                .map(|line| CartLineView {
                    product_id: line.product_id,
                    product_name: line.product_name.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    line_total: line.line_total,
                    available: line.available,
                    available_quantity: line.available_quantity,
                })
                .collect(),
            subtotal: priced.subtotal,
            item_count: priced.item_count,
            version: cart.version,
            updated_at: cart.updated_at,
        }
    }
}

//! Wire forms of domain values: what clients see.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{Category, Money, Order, OrderId, OrderStatus, Product, ProductId, Role, User, UserId, UserStatus};

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
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

//! The store port: the access patterns the handlers need, and nothing more.
//!
//! Two adapters implement it: [`dynamodb::DynamoStore`] (one table, AWS or
//! DynamoDB Local) and [`embedded::EmbeddedStore`] (redb, ACID, no server).
//! Uniqueness (of a user's email) is enforced by the store inside one atomic
//! write, never by a read before a write. `tests/store_contract.rs` runs one
//! suite against both.

pub mod dynamodb;
pub mod embedded;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::config::{Config, StoreKind};
use crate::domain::{Category, Email, Product, ProductId, ProductPage, ProductQuery, StockChange, User, UserId};
use crate::domain::{CategoryName, Description, Money, ProductName};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user already has this email.
    #[error("email already registered")]
    EmailTaken,
    /// Another category already has this name (case-insensitively).
    #[error("category already exists")]
    CategoryTaken,
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// These products have less stock than the change needs; nothing was
    /// written.
    #[error("insufficient stock")]
    InsufficientStock(Vec<ProductId>),
    /// The store cannot be reached or is throttling: a 503, worth a retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record cannot be read back, or another unexpected failure.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Users, their unique emails, and revoked tokens.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Saves a new user; [`StoreError::EmailTaken`] when the email (already
    /// lower-cased) belongs to someone, decided atomically with the write.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Replaces an existing user. When the email changed, the old one is
    /// released and the new one claimed in the same atomic write
    /// ([`StoreError::EmailTaken`] if someone holds it); [`StoreError::NotFound`]
    /// when the user does not exist.
    async fn update_user(&self, user: &User, previous_email: &Email) -> Result<(), StoreError>;

    /// Refuses the token `jti` until `expires_at`, after which the token is
    /// dead anyway and the record may be dropped.
    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), StoreError>;

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
}

/// The new values of an updated product. Everything but the stock is
/// replaced; the stock changes as [`StockChange`] says, atomically with any
/// concurrent order.
#[derive(Clone, Debug)]
pub struct ProductUpdate {
    pub id: ProductId,
    pub name: ProductName,
    pub description: Description,
    pub price: Money,
    pub category: CategoryName,
    pub stock: StockChange,
    pub updated_at: OffsetDateTime,
}

/// Categories and products.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// [`StoreError::CategoryTaken`] when the name's key is taken, decided
    /// atomically with the write.
    async fn create_category(&self, category: &Category) -> Result<(), StoreError>;

    /// Every category, by name.
    async fn categories(&self) -> Result<Vec<Category>, StoreError>;

    async fn category_by_key(&self, key: &str) -> Result<Option<Category>, StoreError>;

    async fn create_product(&self, product: &Product) -> Result<(), StoreError>;

    async fn product_by_id(&self, id: ProductId) -> Result<Option<Product>, StoreError>;

    /// Applies `update` and returns the product as stored after it;
    /// [`StoreError::NotFound`], or [`StoreError::InsufficientStock`] when an
    /// adjustment would take the stock below zero.
    async fn update_product(&self, update: &ProductUpdate) -> Result<Product, StoreError>;

    /// [`StoreError::NotFound`] when there is no such product.
    async fn delete_product(&self, id: ProductId) -> Result<(), StoreError>;

    /// One page of products passing `query`'s filters: newest first, or
    /// cheapest first within a category. Paging through with each page's
    /// `next` yields every matching product exactly once.
    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError>;
}

/// Everything the API stores.
#[async_trait]
pub trait Store: UserStore + CatalogStore {
    /// A cheap round trip proving the store answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The adapter's name, for logs and `/health`.
    fn kind(&self) -> &'static str;
}

/// Builds the adapter the configuration names.
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match config.store {
        StoreKind::Embedded => {
            let store = embedded::EmbeddedStore::open(&config.data_dir)?;
            Ok(Arc::new(store))
        }
        StoreKind::DynamoDb => {
            let store = dynamodb::DynamoStore::connect(config).await;
            Ok(Arc::new(store))
        }
    }
}

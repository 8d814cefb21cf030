//! Categories and products in redb.
//!
//! A search reads the search index (`search`); any other listing walks
//! one index in order inside a single read transaction (a
//! consistent snapshot) and applies [`ProductQuery::matches`] to each
//! product, reading one past the page to know whether another page exists.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::outbox::{Written, record_change};
use super::records::{CategoryRecord, ProductRecord};
use super::search;
use super::{CATEGORIES, EmbeddedStore, PRODUCTS, PRODUCTS_BY_CATEGORY, internal};
use crate::domain::catalog::MAX_STOCK;
use crate::domain::{Category, ListPosition, Product, ProductId, ProductPage, ProductQuery, StockChange};
use crate::store::{CatalogStore, ProductUpdate, StoreError};

/// The largest id string: an upper bound for index ranges.
const MAX_ID: &str = "\u{10FFFF}";

#[async_trait]
impl CatalogStore for EmbeddedStore {
    async fn create_category(&self, category: &Category) -> Result<(), StoreError> {
        let (key, bytes) = (category.name.key(), CategoryRecord::to_bytes(category)?);
        let category = category.clone();
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut categories = txn.open_table(CATEGORIES).map_err(internal)?;
                if categories.get(key.as_str()).map_err(internal)?.is_some() {
                    return Err(StoreError::CategoryTaken);
                }
                categories.insert(key.as_str(), bytes.as_slice()).map_err(internal)?;
            }
            record_change(&txn, None, Some(Written::Category(&category)))?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn categories(&self) -> Result<Vec<Category>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(internal)?;
            let categories = txn.open_table(CATEGORIES).map_err(internal)?;
            let mut all = Vec::new();
            for entry in categories.iter().map_err(internal)? {
                let (_, bytes) = entry.map_err(internal)?;
                all.push(CategoryRecord::from_bytes(bytes.value())?);
            }
            Ok(all)
        })
        .await
    }

    async fn category_by_key(&self, key: &str) -> Result<Option<Category>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let categories = txn.open_table(CATEGORIES).map_err(internal)?;
            let found = categories.get(key.as_str()).map_err(internal)?;
            found.map(|bytes| CategoryRecord::from_bytes(bytes.value())).transpose()
        })
        .await
    }

    async fn create_product(&self, product: &Product) -> Result<(), StoreError> {
        let product = product.clone();
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            if read_product(&txn, product.id)?.is_some() {
                return Err(StoreError::Internal("product id collision".into()));
            }
            write_product(&txn, &product, None)?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn product_by_id(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let products = txn.open_table(PRODUCTS).map_err(internal)?;
            let found = products.get(id.to_string().as_str()).map_err(internal)?;
            found.map(|bytes| ProductRecord::from_bytes(bytes.value())).transpose()
        })
        .await
    }

    async fn update_product(&self, update: &ProductUpdate) -> Result<Product, StoreError> {
        let update = update.clone();
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let current = read_product(&txn, update.id)?.ok_or(StoreError::NotFound)?;
            let stock = match update.stock {
                StockChange::Keep => current.stock,
                StockChange::Set(stock) => stock,
                StockChange::Adjust(delta) => {
                    let adjusted = current
                        .stock
                        .checked_add_signed(delta)
                        .ok_or_else(|| StoreError::InsufficientStock(vec![update.id]))?;
                    if delta > 0 && adjusted > MAX_STOCK {
                        return Err(StoreError::StockAboveMaximum);
                    }
                    adjusted
                }
            };
            let updated = Product {
                name: update.name,
                description: update.description,
                price: update.price,
                category: update.category,
                stock,
                stock_counters: update.stock_counters,
                updated_at: update.updated_at,
                ..current.clone()
            };
            write_product(&txn, &updated, Some(&current))?;
            txn.commit().map_err(internal)?;
            Ok(updated)
        })
        .await
    }

    async fn delete_product(&self, id: ProductId) -> Result<(), StoreError> {
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            let current = read_product(&txn, id)?.ok_or(StoreError::NotFound)?;
            txn.open_table(PRODUCTS).map_err(internal)?.remove(id.to_string().as_str()).map_err(internal)?;
            record_change(&txn, Some(Written::Product(&current)), None)?;
            search::update_entries(&txn, None, Some(&current))?;
            let key = category_index_key(&current);
            let mut index = txn.open_table(PRODUCTS_BY_CATEGORY).map_err(internal)?;
            index.remove((key.0.as_str(), key.1, key.2.as_str())).map_err(internal)?;
            drop(index);
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError> {
        let query = query.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            if !query.terms.is_empty() {
                return search::search(&txn, &query);
            }
            let mut page = Vec::with_capacity(query.limit + 1);
            match &query.category {
                Some(category) => list_by_category(&txn, &query, category, &mut page)?,
                None => list_newest(&txn, &query, &mut page)?,
            }
            let next = if page.len() > query.limit {
                page.truncate(query.limit);
                page.last().map(|last| query.position_of(last))
            } else {
                None
            };
            Ok(ProductPage { items: page, next })
        })
        .await
    }

    async fn rebuild_search_index(&self) -> Result<u64, StoreError> {
        self.writing(|db| {
            let txn = db.begin_write().map_err(internal)?;
            let count = search::rebuild(&txn)?;
            txn.commit().map_err(internal)?;
            Ok(count)
        })
        .await
    }
}

/// Reads products newest first into `page` until it holds `limit + 1`.
fn list_newest(txn: &ReadTransaction, query: &ProductQuery, page: &mut Vec<Product>) -> Result<(), StoreError> {
    let products = txn.open_table(PRODUCTS).map_err(internal)?;
    let upper = match &query.after {
        Some(ListPosition::Newest { id }) => Bound::Excluded(id.to_string()),
        Some(ListPosition::Price { .. }) => return Err(StoreError::Internal("cursor of another listing".into())),
        None => Bound::Unbounded,
    };
    let range = products.range::<&str>((Bound::Unbounded, upper.as_ref().map(String::as_str))).map_err(internal)?;
    let candidates = range.rev().map(|entry| {
        let (_, bytes) = entry.map_err(internal)?;
        ProductRecord::from_bytes(bytes.value()).map(Some)
    });
    fill_page(candidates, query, page)
}

/// Reads one category's products cheapest first, within the price range.
fn list_by_category(
    txn: &ReadTransaction,
    query: &ProductQuery,
    category: &str,
    page: &mut Vec<Product>,
) -> Result<(), StoreError> {
    let index = txn.open_table(PRODUCTS_BY_CATEGORY).map_err(internal)?;
    let products = txn.open_table(PRODUCTS).map_err(internal)?;
    let min = query.min_price.map_or(0, |m| m.minor());
    let max = query.max_price.map_or(u64::MAX, |m| m.minor());
    let start = match &query.after {
        Some(ListPosition::Price { price, id }) => Bound::Excluded((category, *price, id.to_string())),
        Some(ListPosition::Newest { .. }) => return Err(StoreError::Internal("cursor of another listing".into())),
        None => Bound::Included((category, min, String::new())),
    };
    let start = match &start {
        Bound::Excluded((c, p, id)) => Bound::Excluded((*c, *p, id.as_str())),
        Bound::Included((c, p, id)) => Bound::Included((*c, *p, id.as_str())),
        Bound::Unbounded => Bound::Unbounded,
    };
    let range = index.range((start, Bound::Included((category, max, MAX_ID)))).map_err(internal)?;
    let candidates = range.map(|entry| {
        let (key, _) = entry.map_err(internal)?;
        let found = products.get(key.value().2).map_err(internal)?;
        found.map(|bytes| ProductRecord::from_bytes(bytes.value())).transpose()
    });
    fill_page(candidates, query, page)
}

/// Takes candidates in listing order (`None`: an index entry whose product
/// is gone) into `page` while they pass the filters, until it holds
/// `limit + 1`: one past the page tells whether another page exists.
fn fill_page(
    candidates: impl Iterator<Item = Result<Option<Product>, StoreError>>,
    query: &ProductQuery,
    page: &mut Vec<Product>,
) -> Result<(), StoreError> {
    for candidate in candidates {
        let Some(product) = candidate? else { continue };
        if query.matches(&product) {
            page.push(product);
            if page.len() > query.limit {
                break;
            }
        }
    }
    Ok(())
}

pub(super) fn read_product(txn: &WriteTransaction, id: ProductId) -> Result<Option<Product>, StoreError> {
    let products = txn.open_table(PRODUCTS).map_err(internal)?;
    let found = products.get(id.to_string().as_str()).map_err(internal)?;
    found.map(|bytes| ProductRecord::from_bytes(bytes.value())).transpose()
}

/// Writes `product`, moves its category index entry from where
/// `previous` had it, and records the change.
pub(super) fn write_product(
    txn: &WriteTransaction,
    product: &Product,
    previous: Option<&Product>,
) -> Result<(), StoreError> {
    let bytes = ProductRecord::to_bytes(product)?;
    txn.open_table(PRODUCTS)
        .map_err(internal)?
        .insert(product.id.to_string().as_str(), bytes.as_slice())
        .map_err(internal)?;
    record_change(txn, previous.map(Written::Product), Some(Written::Product(product)))?;
    let mut index = txn.open_table(PRODUCTS_BY_CATEGORY).map_err(internal)?;
    let new_key = category_index_key(product);
    if let Some(previous) = previous {
        let old_key = category_index_key(previous);
        if old_key != new_key {
            index.remove((old_key.0.as_str(), old_key.1, old_key.2.as_str())).map_err(internal)?;
        }
    }
    index.insert((new_key.0.as_str(), new_key.1, new_key.2.as_str()), ()).map_err(internal)?;
    drop(index);
    search::update_entries(txn, Some(product), previous)
}

fn category_index_key(product: &Product) -> (String, u64, String) {
    (product.category.key(), product.price.minor(), product.id.to_string())
}

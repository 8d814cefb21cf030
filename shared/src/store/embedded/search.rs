//! The search index in redb (see [`crate::domain::search`]): two tables of
//! keys, written in the product's own transaction, so a search sees every
//! committed write. Entries hold no product data: a search reads each
//! entry's product by id, so its stock is exact.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::records::ProductRecord;
use super::{PRODUCTS, SEARCH_BY_CATEGORY, SEARCH_NEWEST, internal};
use crate::domain::search::{MAX_EXAMINED, PROBE, index_key, index_keys};
use crate::domain::{ListPosition, Product, ProductPage, ProductQuery};
use crate::store::StoreError;

/// The largest id string: an upper bound for index ranges.
const MAX_ID: &str = "\u{10FFFF}";

/// What a product's index entries depend on: a write that changes none of
/// it (an order's stock change) leaves the index alone.
fn indexed_facts(product: &Product) -> (&str, &str, String, u64) {
    (product.name.as_str(), product.description.as_str(), product.category.key(), product.price.minor())
}

/// Moves `previous`'s entries to `product`'s (either may be absent: a
/// creation, a deletion).
pub(super) fn update_entries(
    txn: &WriteTransaction,
    product: Option<&Product>,
    previous: Option<&Product>,
) -> Result<(), StoreError> {
    if let (Some(new), Some(old)) = (product, previous)
        && indexed_facts(new) == indexed_facts(old)
    {
        return Ok(());
    }
    let mut newest = txn.open_table(SEARCH_NEWEST).map_err(internal)?;
    let mut by_category = txn.open_table(SEARCH_BY_CATEGORY).map_err(internal)?;
    if let Some(old) = previous {
        let (id, category, price) = (old.id.to_string(), old.category.key(), old.price.minor());
        for key in index_keys(old) {
            newest.remove((key.as_str(), id.as_str())).map_err(internal)?;
            by_category.remove((category.as_str(), key.as_str(), price, id.as_str())).map_err(internal)?;
        }
    }
    if let Some(new) = product {
        let (id, category, price) = (new.id.to_string(), new.category.key(), new.price.minor());
        for key in index_keys(new) {
            newest.insert((key.as_str(), id.as_str()), ()).map_err(internal)?;
            by_category.insert((category.as_str(), key.as_str(), price, id.as_str()), ()).map_err(internal)?;
        }
    }
    Ok(())
}

/// Empties the index and writes every product's entries again; answers
/// how many products it indexed.
pub(super) fn rebuild(txn: &WriteTransaction) -> Result<u64, StoreError> {
    txn.delete_table(SEARCH_NEWEST).map_err(internal)?;
    txn.delete_table(SEARCH_BY_CATEGORY).map_err(internal)?;
    let products = txn.open_table(PRODUCTS).map_err(internal)?;
    let mut count = 0;
    for entry in products.iter().map_err(internal)? {
        let (_, bytes) = entry.map_err(internal)?;
        update_entries(txn, Some(&ProductRecord::from_bytes(bytes.value())?), None)?;
        count += 1;
    }
    Ok(count)
}

/// Whether the index needs building: products but no entries (a store
/// written before the index existed).
pub(super) fn missing(txn: &WriteTransaction) -> Result<bool, StoreError> {
    let products = txn.open_table(PRODUCTS).map_err(internal)?.len().map_err(internal)?;
    let entries = txn.open_table(SEARCH_NEWEST).map_err(internal)?.len().map_err(internal)?;
    Ok(products > 0 && entries == 0)
}

/// One page of a search: the leading word's entries in listing order.
pub(super) fn search(txn: &ReadTransaction, query: &ProductQuery) -> Result<ProductPage, StoreError> {
    let key = leading_key(txn, query)?;
    let products = txn.open_table(PRODUCTS).map_err(internal)?;
    let mut examined = Examined::new(query);
    each_entry(txn, query, &key, query.after.as_ref(), |id| {
        let found = products.get(id).map_err(internal)?;
        let product = found.map(|bytes| ProductRecord::from_bytes(bytes.value())).transpose()?;
        Ok(examined.take(product))
    })?;
    Ok(examined.page())
}

/// The index key of the word whose list the search reads: with several
/// words, each list's entries are counted first, up to [`PROBE`] + 1.
fn leading_key(txn: &ReadTransaction, query: &ProductQuery) -> Result<String, StoreError> {
    let terms = &query.terms;
    let leading = if terms.words().len() > 1 {
        let mut counts = BTreeMap::new();
        for word in terms.words() {
            let mut count = 0;
            each_entry(txn, query, &index_key(word), None, |_| {
                count += 1;
                Ok(count > PROBE)
            })?;
            counts.insert(word.as_str(), count);
        }
        terms.leading_by(|word| counts[word])
    } else {
        terms.leading()
    };
    leading.map(index_key).ok_or_else(|| StoreError::Internal("a search without words".into()))
}

/// Calls `visit` with the product id of each entry under `key`, in the
/// listing's order from `after`, until it answers `true`.
fn each_entry(
    txn: &ReadTransaction,
    query: &ProductQuery,
    key: &str,
    after: Option<&ListPosition>,
    mut visit: impl FnMut(&str) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    match &query.category {
        Some(category) => {
            let index = txn.open_table(SEARCH_BY_CATEGORY).map_err(internal)?;
            let min = query.min_price.map_or(0, |m| m.minor());
            let max = query.max_price.map_or(u64::MAX, |m| m.minor());
            let start = match after {
                Some(ListPosition::Price { price, id }) => Bound::Excluded((*price, id.to_string())),
                Some(ListPosition::Newest { .. }) => return Err(other_cursor()),
                None => Bound::Included((min, String::new())),
            };
            let start = start.as_ref().map(|(price, id)| (category.as_str(), key, *price, id.as_str()));
            let range =
                index.range((start, Bound::Included((category.as_str(), key, max, MAX_ID)))).map_err(internal)?;
            for entry in range {
                let (entry, _) = entry.map_err(internal)?;
                if visit(entry.value().3)? {
                    break;
                }
            }
        }
        None => {
            let index = txn.open_table(SEARCH_NEWEST).map_err(internal)?;
            let upper = match after {
                Some(ListPosition::Newest { id }) => Bound::Excluded(id.to_string()),
                Some(ListPosition::Price { .. }) => return Err(other_cursor()),
                None => Bound::Included(MAX_ID.to_owned()),
            };
            let upper = upper.as_ref().map(|id| (key, id.as_str()));
            let range = index.range((Bound::Included((key, "")), upper)).map_err(internal)?;
            for entry in range.rev() {
                let (entry, _) = entry.map_err(internal)?;
                if visit(entry.value().1)? {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn other_cursor() -> StoreError {
    StoreError::Internal("cursor of another listing".into())
}

/// A page being filled from index entries, within [`MAX_EXAMINED`].
struct Examined<'q> {
    query: &'q ProductQuery,
    items: Vec<Product>,
    skipped: usize,
    /// Where the next page starts if the budget runs out: the last entry
    /// examined (skipped ones included, so none is examined twice).
    last: Option<ListPosition>,
    budget_spent: bool,
}

impl<'q> Examined<'q> {
    fn new(query: &'q ProductQuery) -> Self {
        Examined { query, items: Vec::with_capacity(query.limit + 1), skipped: 0, last: None, budget_spent: false }
    }

    /// Takes one entry's product (`None`: deleted in the same snapshot
    /// cannot happen, but is skipped); answers whether to stop.
    fn take(&mut self, product: Option<Product>) -> bool {
        let Some(product) = product else { return false };
        self.last = Some(self.query.position_of(&product));
        if self.query.matches(&product) {
            self.items.push(product);
            return self.items.len() > self.query.limit;
        }
        self.skipped += 1;
        self.budget_spent = self.skipped >= MAX_EXAMINED;
        self.budget_spent
    }

    fn page(mut self) -> ProductPage {
        let next = if self.items.len() > self.query.limit {
            self.items.truncate(self.query.limit);
            self.items.last().map(|last| self.query.position_of(last))
        } else if self.budget_spent {
            self.last
        } else {
            None
        };
        ProductPage { items: self.items, next }
    }
}

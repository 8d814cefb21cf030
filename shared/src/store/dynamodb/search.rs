//! The search index on DynamoDB (see [`crate::domain::search`]).
//!
//! # Entries
//!
//! | item | `PK` | `SK` | indexes |
//! | --- | --- | --- | --- |
//! | search entry | `SEARCH#<key>` | `<product id>` | GSI1 `SEARCH#<key>#IN` / `<id>` while in stock (sparse); GSI2 `SEARCH#<category>#<key>` / `<price:012>#<id>` |
//!
//! An entry is a copy of its product's attributes (`entity` =
//! `searchEntry`, which the change feed ignores), so a page of results is
//! one query reading the page and one entry more: no read per product. The
//! newest-first order is the base table's sort key, `inStock=true` is the
//! sparse GSI1, a category (and price range) is GSI2.
//!
//! # Freshness
//!
//! Entries are written from the table's stream (the `search-index`
//! function; `shop-local`'s stream poller), not in the product's own
//! write: a product has more entries than one transaction may hold. Each
//! batch of stream records rewrites a product's entries once, from the
//! last image of it in the batch, and deletes the keys it no longer has.
//! So a search reflects a write once its batch is indexed (the stream's
//! lag plus the batching window). A stock change that neither reaches nor
//! leaves zero writes no entry: an entry's stock is the product's as of its
//! last catalog change, sell-out or restock, and whether it is in stock is
//! right within the stream's lag; orders cost the index nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnConsumedCapacity, Select, WriteRequest,
};

use super::DynamoStore;
use super::errors::classify;
use super::items::{self, Item, PRODUCTS_PARTITION, n, product_attributes, product_from_item, s};
use super::paging::{Budget, collect};
use super::stock::counter_of;
use super::stream::change_of;
use crate::domain::search::{MAX_EXAMINED, PROBE, changes_listings, index_key, index_keys};
use crate::domain::{ListPosition, Product, ProductId, ProductPage, ProductQuery};
use crate::events::Entity;
use crate::events::stream::StreamRecord;
use crate::store::StoreError;

/// The most requests one `BatchWriteItem` takes.
const WRITE_BATCH: usize = 25;
/// `BatchWriteItem` calls in flight at once while indexing.
const WRITE_CONCURRENCY: usize = 4;
/// Read units a search page with conditions no key serves may spend, its
/// words' counting included (besides [`MAX_EXAMINED`]): entries are copies
/// of products, so the entries' size, not only their count, is what a page
/// pays for. Queries after the first shrink to what the units left buy
/// (see [`super::paging::Budget`]); the first always runs.
const READ_UNITS_PAGE: f64 = 8.0;
/// Words of a search whose lists are counted to choose the leading word:
/// each count reads up to [`PROBE`] + 1 entries (about 1.5 units), so a
/// ten-word search counts three, not ten.
const PROBED_WORDS: usize = 3;

fn entry_partition(key: &str) -> String {
    format!("SEARCH#{key}")
}

fn in_stock_partition(key: &str) -> String {
    format!("SEARCH#{key}#IN")
}

/// Keys hold no `#`, so the last one separates the category from the key.
fn category_entry_partition(category: &str, key: &str) -> String {
    format!("SEARCH#{category}#{key}")
}

/// The entry of `product` under `key`: its attributes, the entry's keys.
pub(super) fn entry_item(product: &Product, key: &str) -> Item {
    let mut item: Item =
        product_attributes(product).into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    let id = product.id.to_string();
    item.insert("entity".into(), s("searchEntry"));
    item.insert("PK".into(), s(entry_partition(key)));
    item.insert("SK".into(), s(id.clone()));
    if product.stock > 0 {
        item.insert("GSI1PK".into(), s(in_stock_partition(key)));
        item.insert("GSI1SK".into(), s(id));
    } else {
        item.remove("GSI1PK");
        item.remove("GSI1SK");
    }
    item.insert("GSI2PK".into(), s(category_entry_partition(&product.category.key(), key)));
    item.insert("GSI2SK".into(), s(items::price_sort_key(product.price.minor(), product.id)));
    item
}

fn entry_key(key: &str, id: ProductId) -> Item {
    HashMap::from([("PK".to_owned(), s(entry_partition(key))), ("SK".to_owned(), s(id.to_string()))])
}

/// What one batch did to the index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IndexWork {
    pub puts: usize,
    pub deletes: usize,
    /// Some product changed more than its stock within availability
    /// ([`changes_listings`]): cached search pages are stale now.
    pub listings_changed: bool,
}

/// The product of a stream record of a stock counter that reached or left
/// zero (a counter created or removed holding units counts too).
fn counter_crossing_zero(record: &StreamRecord) -> Option<ProductId> {
    let units = |image: Option<&Item>| image.and_then(counter_of);
    let (old, new) = (units(record.dynamodb.old_image.as_ref()), units(record.dynamodb.new_image.as_ref()));
    let product = old.or(new)?.0;
    let in_stock = |counter: Option<(ProductId, u64)>| counter.is_some_and(|(_, units)| units > 0);
    (in_stock(old) != in_stock(new)).then_some(product)
}

/// The entry writes that take the index from `before` to `after` (either
/// absent: a creation, a deletion). None for a stock change that neither
/// reaches nor leaves zero: orders would otherwise rewrite every entry of
/// every product they touch (about 77 write units each), and a listing's
/// stock is availability (see [`changes_listings`]).
fn entry_writes(before: Option<&Product>, after: Option<&Product>) -> Vec<WriteRequest> {
    if !changes_listings(before, after) {
        return Vec::new();
    }
    let wanted = after.map(index_keys).unwrap_or_default();
    let mut writes = Vec::new();
    if let Some(before) = before {
        for key in index_keys(before).difference(&wanted) {
            let delete = DeleteRequest::builder().set_key(Some(entry_key(key, before.id))).build();
            writes.push(WriteRequest::builder().delete_request(delete.expect("a key")).build());
        }
    }
    if let Some(after) = after {
        for key in &wanted {
            let put = PutRequest::builder().set_item(Some(entry_item(after, key))).build();
            writes.push(WriteRequest::builder().put_request(put.expect("an item")).build());
        }
    }
    writes
}

impl DynamoStore {
    /// Applies a batch of stream records to the search index: per product,
    /// from its state before the batch to its state after it. Records of
    /// other items are ignored; an undecodable record is skipped (its
    /// product is put right by the next write or `shop-local reindex`).
    pub async fn index_records(&self, records: &[StreamRecord]) -> Result<IndexWork, StoreError> {
        // Product id -> (state before the batch, state after it).
        let mut spans: HashMap<ProductId, (Option<Product>, Option<Product>)> = HashMap::new();
        // Counted products one of whose counters reached or left zero.
        let mut recount = BTreeSet::new();
        for record in records {
            recount.extend(counter_crossing_zero(record));
            let change = match change_of(record) {
                Ok(Some(change)) => change,
                Ok(None) => continue,
                Err(err) => {
                    tracing::error!(event_id = %record.event_id, error = %err, "a stream record cannot be decoded; not indexed");
                    continue;
                }
            };
            let product = |entity: Option<Entity>| match entity {
                Some(Entity::Product(product)) => Some(product),
                _ => None,
            };
            let (before, after) = (product(change.old), product(change.new));
            let Some(id) = before.as_ref().or(after.as_ref()).map(|p| p.id) else { continue };
            spans.entry(id).or_insert_with(|| (before, None)).1 = after;
        }
        // A counter's zero is not the product's: its total is read, and its
        // entries and listing entry rewritten as if they showed the other
        // availability (they may show either), from whatever else the
        // batch changed of it. The product item of a counted product holds
        // the total as of the last admin write, so its own image does not
        // do.
        for id in recount {
            let Some(fresh) = self.read_product(id).await? else { continue };
            let span = spans.entry(id).or_insert((None, None));
            let before = span.0.take().unwrap_or_else(|| fresh.clone());
            span.0 = Some(Product { stock: u64::from(fresh.stock == 0), ..before });
            span.1 = Some(fresh);
        }
        let mut work = IndexWork::default();
        let mut writes = Vec::new();
        let mut listed = Vec::new();
        for (before, after) in spans.values() {
            let changed = changes_listings(before.as_ref(), after.as_ref());
            work.listings_changed |= changed;
            // The listing entry too: a sell-out or a restock is written
            // only here; a catalog change was written by its request, and
            // is written again in case that request stopped half-way.
            if let (true, Some(after)) = (changed, after) {
                listed.push(after);
            }
            for write in entry_writes(before.as_ref(), after.as_ref()) {
                if write.put_request.is_some() {
                    work.puts += 1;
                } else {
                    work.deletes += 1;
                }
                writes.push(write);
            }
        }
        self.write_all(writes).await?;
        for product in listed {
            self.write_listing(product).await?;
        }
        Ok(work)
    }

    /// Every write, [`WRITE_BATCH`] a call, [`WRITE_CONCURRENCY`] calls at
    /// once; what DynamoDB leaves unprocessed is sent again with backoff.
    async fn write_all(&self, writes: Vec<WriteRequest>) -> Result<(), StoreError> {
        use futures::{StreamExt, TryStreamExt};

        let chunks: Vec<Vec<WriteRequest>> = writes.chunks(WRITE_BATCH).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks.into_iter().map(|chunk| self.write_chunk(chunk)))
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn write_chunk(&self, mut chunk: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..8u32 {
            let output =
                self.client.batch_write_item().request_items(&self.table, chunk).send().await.map_err(classify)?;
            chunk = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
            if chunk.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25 << attempt.min(5))).await;
        }
        Err(StoreError::Unavailable("search index writes kept coming back unprocessed".into()))
    }

    /// One page of a search: the leading word's entries, in the listing's
    /// order, with the conditions no key serves as a filter.
    pub(super) async fn search(&self, query: &ProductQuery) -> Result<ProductPage, StoreError> {
        let (key, probe_units) = self.leading_key(query).await?;
        let plan = SearchPlan::new(query, key);
        let start = query.after.as_ref().map(|position| plan.start_key(position));
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(plan.index.map(str::to_owned))
            .key_condition_expression(plan.key_condition)
            .set_filter_expression(plan.filter.clone())
            .set_expression_attribute_names(plan.names.clone())
            .set_expression_attribute_values(Some(plan.values.clone()))
            .scan_index_forward(plan.ascending)
            .limit(plan.page_size)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let budget = Budget { queries: plan.queries, read_units: READ_UNITS_PAGE - probe_units };
        let page = collect(request, start, query.limit, budget, product_from_item).await?;
        let next = page.next(|last| query.position_of(last), |key| plan.position_of_key(key).map(Some))?;
        Ok(ProductPage { items: page.items, next })
    }

    /// The index key of the word whose list the search reads, and the read
    /// units spent choosing it: with several words, the lists of the
    /// [`PROBED_WORDS`] longest are counted first (one query each, at once,
    /// reading at most [`PROBE`] + 1 entries); the others count as long.
    async fn leading_key(&self, query: &ProductQuery) -> Result<(String, f64), StoreError> {
        let terms = &query.terms;
        if terms.words().len() < 2 {
            let key = terms.leading_key().ok_or_else(|| StoreError::Internal("a search without words".into()))?;
            return Ok((key, 0.0));
        }
        let mut probed: Vec<&String> = terms.words().iter().collect();
        probed.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
        probed.truncate(PROBED_WORDS);
        let counts = probed.into_iter().map(|word| async move {
            let plan = SearchPlan::new(query, index_key(word));
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(plan.index.map(str::to_owned))
                .key_condition_expression(plan.key_condition)
                .set_expression_attribute_values(Some(plan.key_values()))
                .select(Select::Count)
                .limit(i32::try_from(PROBE + 1).unwrap_or(i32::MAX))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(classify)?;
            let units = output.consumed_capacity().and_then(|spent| spent.capacity_units()).unwrap_or(0.0);
            Ok::<_, StoreError>((word.as_str(), (usize::try_from(output.count).unwrap_or(0), units)))
        });
        let counts: HashMap<&str, (usize, f64)> = futures::future::try_join_all(counts).await?.into_iter().collect();
        let units = counts.values().map(|(_, units)| units).sum();
        let count = |word: &str| counts.get(word).map_or(PROBE + 1, |(count, _)| *count);
        Ok((terms.leading_by(count).map(index_key).unwrap_or_default(), units))
    }

    /// Writes every product's entries and deletes entries of products or
    /// keys that no longer exist (a Scan of the entries: an operator's
    /// command, never a request's path).
    pub(super) async fn rebuild_search(&self) -> Result<u64, StoreError> {
        let wanted = self.write_search_entries().await?;
        self.sweep_search_entries(&wanted).await?;
        Ok(wanted.len() as u64)
    }

    /// Writes every product's entries; each product's id and index keys.
    /// Alone (without the sweep), what a table without stale entries needs:
    /// `search-bench` fills a new table's index with it, because DynamoDB
    /// Local pages a Scan of millions of items in hours.
    pub async fn write_search_entries(&self) -> Result<HashMap<String, BTreeSet<String>>, StoreError> {
        let mut wanted: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", s(PRODUCTS_PARTITION))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            let mut writes = Vec::new();
            for item in output.items() {
                let product = product_from_item(item)?;
                if items::attr_s(item, "entity")? == "product" {
                    self.move_listing_off_product(&product).await?;
                }
                writes.extend(entry_writes(None, Some(&product)));
                wanted.insert(product.id.to_string(), index_keys(&product));
            }
            self.write_all(writes).await?;
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(wanted);
            }
        }
    }

    /// A product item written before listing entries existed, found in the
    /// listing index: its listing entry is written, and the index keys
    /// come off the product item, so that its orders stop writing the
    /// index (what `shop-local reindex` does once after an upgrade).
    async fn move_listing_off_product(&self, product: &Product) -> Result<(), StoreError> {
        self.write_listing(product).await?;
        self.writer
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::Key::product(product.id).into_item()))
            .update_expression("REMOVE GSI1PK, GSI1SK, GSI2PK, GSI2SK")
            .condition_expression("attribute_exists(PK)")
            .send()
            .await
            .map(|_| ())
            .or_else(|err| match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => Ok(()),
                _ => Err(classify(err)),
            })
    }

    /// Deletes every entry not `wanted` (products or keys that are gone).
    async fn sweep_search_entries(&self, wanted: &HashMap<String, BTreeSet<String>>) -> Result<(), StoreError> {
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(PK, :search) AND #entity = :entry")
                .expression_attribute_names("#entity", "entity")
                .expression_attribute_values(":search", s("SEARCH#"))
                .expression_attribute_values(":entry", s("searchEntry"))
                .projection_expression("PK, SK")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            let mut stale = Vec::new();
            for item in output.items() {
                let (pk, id) = (items::attr_s(item, "PK")?, items::attr_s(item, "SK")?);
                let key = pk.trim_start_matches("SEARCH#");
                if !wanted.get(&id).is_some_and(|keys| keys.contains(key)) {
                    let delete = DeleteRequest::builder().set_key(Some(item.clone())).build();
                    stale.push(WriteRequest::builder().delete_request(delete.expect("a key")).build());
                }
            }
            self.write_all(stale).await?;
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }
}

/// How one search queries the entries.
struct SearchPlan {
    index: Option<&'static str>,
    key_condition: &'static str,
    ascending: bool,
    filter: Option<String>,
    names: Option<HashMap<String, String>>,
    values: HashMap<String, AttributeValue>,
    page_size: i32,
    /// Queries a page may make: with a filter, at most [`MAX_EXAMINED`]
    /// entries and one query's more are examined.
    queries: usize,
    key: String,
    category: Option<String>,
}

impl SearchPlan {
    /// The plan reading `key`'s entries (the leading word's index key).
    fn new(query: &ProductQuery, key: String) -> Self {
        let mut filters = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut stock_filter = query.in_stock;
        let (index, key_condition, ascending) = match &query.category {
            Some(category) => {
                let min = query.min_price.map_or(0, |m| m.minor());
                let max = query.max_price.map_or(999_999_999_999, |m| m.minor());
                values.insert(":pk".into(), s(category_entry_partition(category, &key)));
                values.insert(":lo".into(), s(format!("{min:012}#")));
                values.insert(":hi".into(), s(format!("{max:012}#~")));
                (Some("GSI2"), "GSI2PK = :pk AND GSI2SK BETWEEN :lo AND :hi", true)
            }
            None => {
                let mut price = |op: &str, placeholder: &str, bound: Option<crate::domain::Money>| {
                    if let Some(bound) = bound {
                        filters.push(format!("#price {op} {placeholder}"));
                        names.insert("#price".to_owned(), "price".to_owned());
                        values.insert(placeholder.to_owned(), n(bound.minor()));
                    }
                };
                price(">=", ":minPrice", query.min_price);
                price("<=", ":maxPrice", query.max_price);
                if query.in_stock == Some(true) {
                    // The sparse index holds only what is in stock.
                    stock_filter = None;
                    values.insert(":pk".into(), s(in_stock_partition(&key)));
                    (Some("GSI1"), "GSI1PK = :pk", false)
                } else {
                    values.insert(":pk".into(), s(entry_partition(&key)));
                    (None, "PK = :pk", false)
                }
            }
        };
        if let Some(in_stock) = stock_filter {
            filters.push(if in_stock { "#stock > :zero" } else { "#stock = :zero" }.to_owned());
            names.insert("#stock".into(), "stock".into());
            values.insert(":zero".into(), n(0));
        }
        if !query.terms.served_by_key() {
            for (i, pattern) in query.terms.patterns().enumerate() {
                filters.push(format!("contains(#searchText, :term{i})"));
                names.insert("#searchText".into(), "searchText".into());
                values.insert(format!(":term{i}"), s(pattern));
            }
        }
        let wanted = query.limit + 1;
        let (page_size, queries) = if filters.is_empty() {
            (wanted, 1)
        } else {
            let size = (wanted * 2).min(MAX_EXAMINED);
            (size, MAX_EXAMINED / size + 1)
        };
        SearchPlan {
            index,
            key_condition,
            ascending,
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            names: (!names.is_empty()).then_some(names),
            values,
            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
            queries,
            key,
            category: query.category.clone(),
        }
    }

    /// The values the key condition names (without the filter's).
    fn key_values(&self) -> HashMap<String, AttributeValue> {
        let named = [":pk", ":lo", ":hi"];
        self.values
            .iter()
            .filter(|(name, _)| named.contains(&name.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The key of the entry at `position`: where the query resumes.
    fn start_key(&self, position: &ListPosition) -> Item {
        let id = match position {
            ListPosition::Newest { id } | ListPosition::Price { id, .. } => *id,
        };
        let mut key = entry_key(&self.key, id);
        match (self.index, position) {
            (Some("GSI1"), _) => {
                key.insert("GSI1PK".into(), s(in_stock_partition(&self.key)));
                key.insert("GSI1SK".into(), s(id.to_string()));
            }
            (Some("GSI2"), ListPosition::Price { price, .. }) => {
                let category = self.category.as_deref().unwrap_or_default();
                key.insert("GSI2PK".into(), s(category_entry_partition(category, &self.key)));
                key.insert("GSI2SK".into(), s(items::price_sort_key(*price, id)));
            }
            _ => {}
        }
        key
    }

    /// The listing position of an entry key DynamoDB returned.
    fn position_of_key(&self, key: &Item) -> Result<ListPosition, StoreError> {
        let corrupt = || StoreError::Internal("unexpected LastEvaluatedKey".into());
        match self.category {
            None => Ok(ListPosition::Newest { id: ProductId::parse(&items::attr_s(key, "SK")?).ok_or_else(corrupt)? }),
            Some(_) => {
                let sort_key = items::attr_s(key, "GSI2SK")?;
                let (price, id) = sort_key.split_once('#').ok_or_else(corrupt)?;
                Ok(ListPosition::Price {
                    price: price.parse().map_err(|_| corrupt())?,
                    id: ProductId::parse(id).ok_or_else(corrupt)?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{CategoryName, Description, Money, ProductName, SearchTerms};

    fn product(stock: u64) -> Product {
        let now = OffsetDateTime::now_utc();
        Product {
            id: ProductId::new(),
            name: ProductName::parse("Red Mug").unwrap(),
            description: Description::parse("").unwrap(),
            price: Money::from_minor(1250),
            category: CategoryName::parse("Home").unwrap(),
            stock,
            stock_counters: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn an_entry_is_the_product_under_its_keys_and_never_an_entity() {
        let mug = product(3);
        let entry = entry_item(&mug, "mu");
        assert_eq!(product_from_item(&entry).unwrap(), mug, "the entry decodes as the product");
        assert_eq!(items::attr_s(&entry, "entity").unwrap(), "searchEntry");
        assert_eq!(items::attr_s(&entry, "PK").unwrap(), "SEARCH#mu");
        assert_eq!(items::attr_s(&entry, "GSI1PK").unwrap(), "SEARCH#mu#IN");
        assert_eq!(items::attr_s(&entry, "GSI2PK").unwrap(), "SEARCH#home#mu");
        assert_eq!(items::attr_s(&entry, "GSI2SK").unwrap(), format!("000000001250#{}", mug.id));
        assert!(!entry_item(&product(0), "mu").contains_key("GSI1PK"), "out of stock: not in the sparse index");
    }

    #[test]
    fn a_rename_deletes_the_keys_it_lost_and_puts_the_ones_it_has() {
        let before = product(3);
        let after = Product { name: ProductName::parse("Red Cup").unwrap(), ..before.clone() };
        let writes = entry_writes(Some(&before), Some(&after));
        let deleted: BTreeSet<String> = writes
            .iter()
            .filter_map(|w| w.delete_request.as_ref())
            .map(|d| items::attr_s(&d.key, "PK").unwrap())
            .collect();
        assert_eq!(deleted, ["SEARCH#m", "SEARCH#mu", "SEARCH#mug"].map(str::to_owned).into());
        let puts = writes.iter().filter(|w| w.put_request.is_some()).count();
        assert_eq!(puts, index_keys(&after).len());
        assert_eq!(entry_writes(Some(&before), None).len(), index_keys(&before).len(), "a deletion deletes all");
    }

    #[test]
    fn only_a_stock_change_across_zero_rewrites_the_entries() {
        let before = product(3);
        let sold = Product { stock: before.stock - 1, ..before.clone() };
        assert!(entry_writes(Some(&before), Some(&sold)).is_empty(), "an order leaves the entries alone");
        let sold_out = Product { stock: 0, ..before.clone() };
        let writes = entry_writes(Some(&before), Some(&sold_out));
        assert_eq!(writes.len(), index_keys(&before).len(), "a sell-out rewrites every entry");
        assert!(writes.iter().all(|w| w.put_request.as_ref().is_some_and(|p| !p.item.contains_key("GSI1PK"))));
    }

    #[test]
    fn keyed_searches_read_one_entry_past_the_page_and_others_are_bounded() {
        let query = |q: &str, category: Option<&str>, in_stock: Option<bool>| ProductQuery {
            terms: SearchTerms::parse(q).unwrap(),
            category: category.map(str::to_owned),
            in_stock,
            limit: 20,
            ..Default::default()
        };
        for keyed in [query("mug", None, None), query("mug", Some("home"), None), query("mug", None, Some(true))] {
            let plan = SearchPlan::new(&keyed, "mug".into());
            assert_eq!((plan.page_size, plan.queries, plan.filter), (21, 1, None));
        }
        let filtered = SearchPlan::new(&query("mug red", None, Some(false)), "mug".into());
        assert!(filtered.filter.is_some());
        assert!(
            filtered.page_size as usize * filtered.queries <= MAX_EXAMINED + 2 * 21,
            "examines at most 200 + one query"
        );
    }
}

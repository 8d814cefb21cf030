//! Categories and products.
//!
//! A search reads the search entries (`search`). Any other listing
//! queries the listing entries ([`items::listing_item`]) through one index
//! (GSI1 newest first, or GSI2 for a category and price range) with
//! filter expressions for what the index does not serve, page after page,
//! until it has one product more than the page needs or the index is
//! exhausted. The cursor is the position of the last product returned, so
//! no product is skipped or repeated. The product item itself is in no
//! index: orders rewrite it, and its index entries would put every order
//! line of the shop into one index partition.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::{classify, send_transaction, transaction_conflict};
use super::items::{
    self, CATEGORIES_PARTITION, Item, Key, PRODUCTS_PARTITION, category_from_item, category_partition,
    category_to_item, listing_item, n, price_sort_key, product_from_item, product_to_item, s,
};
use super::paging::collect;
use crate::domain::catalog::MAX_STOCK;
use crate::domain::{Category, ListPosition, Product, ProductId, ProductPage, ProductQuery, StockChange};
use crate::store::{CatalogStore, ProductUpdate, StoreError};

/// Index queries one listing may make before it returns a short page with
/// a cursor: bounds the cost of a very selective filter.
const MAX_QUERIES_PER_PAGE: usize = 10;

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn create_category(&self, category: &Category) -> Result<(), StoreError> {
        let result = self
            .writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(category_to_item(category)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::CategoryTaken)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn categories(&self) -> Result<Vec<Category>, StoreError> {
        let mut categories = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", s(CATEGORIES_PARTITION))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in output.items() {
                categories.push(category_from_item(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(categories);
            }
        }
    }

    async fn category_by_key(&self, key: &str) -> Result<Option<Category>, StoreError> {
        self.get(Key::category(key)).await?.map(|item| category_from_item(&item)).transpose()
    }

    /// The product, its listing entry and its counters, in one transaction.
    async fn create_product(&self, product: &Product) -> Result<(), StoreError> {
        let mut writes = vec![
            self.put(product_to_item(product), "attribute_not_exists(PK)")?,
            self.put(listing_item(product), "attribute_not_exists(PK)")?,
        ];
        writes.extend(self.new_counters(product)?);
        let request = self.writer.transact_write_items().set_transact_items(Some(writes));
        send_transaction(request)
            .await
            .map(|_| ())
            .map_err(|err| transaction_conflict(err, |_| StoreError::Internal("product id collision".into())))
    }

    async fn product_by_id(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        self.read_product(id).await
    }

    /// In place on the product item while it holds its own stock and keeps
    /// doing so; otherwise a re-spread over its counters.
    async fn update_product(&self, update: &ProductUpdate) -> Result<Product, StoreError> {
        let in_place = if update.stock_counters <= 1 { self.update_in_place(update).await? } else { None };
        let product = match in_place {
            Some(product) => product,
            None => self.respread(update).await?,
        };
        self.write_listing(&product).await?;
        Ok(product)
    }
    /// The product, its counters and its listing entry, in one
    /// transaction conditioned on the counters being the ones read.
    async fn delete_product(&self, id: ProductId) -> Result<(), StoreError> {
        for _ in 0..3 {
            let stored = self.get(Key::product(id)).await?.ok_or(StoreError::NotFound)?;
            let counters = items::stock_counters_of(&stored)?;
            let condition = match counters {
                0 | 1 => "attribute_exists(PK) AND (attribute_not_exists(stockCounters) OR stockCounters = :counters)",
                _ => "stockCounters = :counters",
            };
            let product = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Key::product(id).into_item()))
                .condition_expression(condition)
                .expression_attribute_values(":counters", n(counters.max(1)))
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut writes = vec![TransactWriteItem::builder().delete(product).build(), self.tombstone(id)?];
            writes.extend(self.counter_deletes(id, counters)?);
            let request = self.writer.transact_write_items().set_transact_items(Some(writes));
            match send_transaction(request).await {
                Ok(_) => return Ok(()),
                // Gone, or re-spread since the read: read again.
                Err(err) if super::orders::items_failing(&err, 1) == [0] => continue,
                Err(err) => return Err(transaction_conflict(err, |_| StoreError::NotFound)),
            }
        }
        Err(StoreError::Contended("the product kept changing under its deletion".into()))
    }

    async fn list_products(&self, query: &ProductQuery) -> Result<ProductPage, StoreError> {
        if !query.terms.is_empty() {
            return self.search(query).await;
        }
        let plan = ListingPlan::new(query);
        let start = query.after.as_ref().map(|position| plan.start_key(position));
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(plan.index)
            .key_condition_expression(plan.key_condition)
            .set_filter_expression(plan.filter.clone())
            .set_expression_attribute_names(plan.names.clone())
            .set_expression_attribute_values(Some(plan.values.clone()))
            .scan_index_forward(plan.ascending)
            .limit(plan.page_size);
        let page = collect(request, start, query.limit, MAX_QUERIES_PER_PAGE, product_from_item).await?;
        // The query budget ran out mid-index: resume after what was examined.
        let next = page.next(|last| query.position_of(last), |key| plan.position_of_key(key).map(Some))?;
        Ok(ProductPage { items: page.items, next })
    }

    async fn rebuild_search_index(&self) -> Result<u64, StoreError> {
        self.rebuild_search().await
    }
}

impl DynamoStore {
    /// A deleted product's listing entry: a tombstone, in no index, dated
    /// now, so the change feed's late copy of an older state cannot bring
    /// the product back into the listings. It is kept two days, past the
    /// stream's own retention of one.
    fn tombstone(&self, id: ProductId) -> Result<TransactWriteItem, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut tombstone = Key::product_listing(id).into_item();
        tombstone.extend([
            ("entity".to_owned(), s("productListing")),
            ("deleted".to_owned(), AttributeValue::Bool(true)),
            ("listedAt".to_owned(), n(now.unix_timestamp_nanos())),
            ("expiresAt".to_owned(), n((now + time::Duration::days(2)).unix_timestamp())),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(tombstone))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// [`CatalogStore::update_product`] of a product holding its own stock,
    /// one conditional update; `None` when the product turned out to be
    /// counted (its item no longer holds the stock).
    async fn update_in_place(&self, update: &ProductUpdate) -> Result<Option<Product>, StoreError> {
        let UpdateExpression { set, condition, names, values } = update_expression(update);
        let result = self
            .writer
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::product(update.id).into_item()))
            .update_expression(set)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(product_from_item(
                output.attributes().ok_or_else(|| StoreError::Internal("no attributes".into()))?,
            )?)),
            Err(err) => match err.as_service_error() {
                // With the old item returned, the product exists: the stock
                // condition is what failed.
                Some(e) if e.is_conditional_check_failed_exception() => match e {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)
                        if c.item().is_some_and(|item| items::stock_counters_of(item).is_ok_and(|n| n > 1)) =>
                    {
                        Ok(None)
                    }
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)
                        if c.item().is_some() =>
                    {
                        // Only one bound is checked, by the delta's sign.
                        match update.stock {
                            StockChange::Adjust(delta) if delta > 0 => Err(StoreError::StockAboveMaximum),
                            _ => Err(StoreError::InsufficientStock(vec![update.id])),
                        }
                    }
                    _ => Err(StoreError::NotFound),
                },
                _ => Err(classify(err)),
            },
        }
    }

    /// [`CatalogStore::update_product`] moving the units between the
    /// product item and counters (or among counters): the stock as read
    /// is changed as `update.stock` says and spread over
    /// `update.stock_counters`, in one transaction conditioned on every
    /// counter being as read. An order landing in between refuses it, and
    /// it is tried again, up to 5 times (then a 429).
    async fn respread(&self, update: &ProductUpdate) -> Result<Product, StoreError> {
        for _ in 0..5 {
            let stored = self.get(Key::product(update.id)).await?.ok_or(StoreError::NotFound)?;
            let stored = product_from_item(&stored)?;
            let from = match stored.stock_counters {
                0 | 1 => vec![stored.stock],
                count => self.read_counters(update.id, count).await?,
            };
            let stock = changed_stock(update.stock, from.iter().sum(), update.id)?;
            let product = Product {
                id: update.id,
                name: update.name.clone(),
                description: update.description.clone(),
                price: update.price,
                category: update.category.clone(),
                stock,
                stock_counters: update.stock_counters.max(1),
                created_at: stored.created_at,
                updated_at: update.updated_at,
            };
            let (condition, mut values) = if stored.stock_counters > 1 {
                ("stockCounters = :counters", vec![(":counters", n(stored.stock_counters))])
            } else {
                (
                    "attribute_exists(PK) AND (attribute_not_exists(stockCounters) OR stockCounters = :one) \
                     AND #stock = :old",
                    vec![(":one", n(1)), (":old", n(stored.stock))],
                )
            };
            let product_write = Put::builder()
                .table_name(&self.table)
                .set_item(Some(product_to_item(&product)))
                .condition_expression(condition)
                .set_expression_attribute_names(
                    (stored.stock_counters <= 1).then(|| HashMap::from([("#stock".to_owned(), "stock".to_owned())])),
                )
                .set_expression_attribute_values(Some(
                    values.drain(..).map(|(name, value)| (name.to_owned(), value)).collect(),
                ))
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut writes = vec![TransactWriteItem::builder().put(product_write).build()];
            writes.extend(self.respread_writes(update.id, &from, stock, product.stock_counters)?);
            let request = self.writer.transact_write_items().set_transact_items(Some(writes));
            match send_transaction(request).await {
                Ok(_) => return self.read_product(update.id).await?.ok_or(StoreError::NotFound),
                Err(err) if !super::orders::items_failing(&err, usize::MAX).is_empty() => {
                    tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(5..50))).await;
                }
                Err(err) => return Err(transaction_conflict(err, |_| StoreError::NotFound)),
            }
        }
        Err(StoreError::Contended("the product's stock kept moving under the change".into()))
    }
}

/// The stock after `change`, from `total`: never below zero, and never
/// above the maximum by an addition.
fn changed_stock(change: StockChange, total: u64, id: ProductId) -> Result<u64, StoreError> {
    match change {
        StockChange::Keep => Ok(total),
        StockChange::Set(stock) => Ok(stock),
        StockChange::Adjust(delta) => {
            let adjusted = total.checked_add_signed(delta).ok_or_else(|| StoreError::InsufficientStock(vec![id]))?;
            if delta > 0 && adjusted > MAX_STOCK {
                return Err(StoreError::StockAboveMaximum);
            }
            Ok(adjusted)
        }
    }
}

struct UpdateExpression {
    set: String,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// `SET` every replaced attribute; the stock is set, added to, or left
/// alone. An adjustment below zero fails the condition instead of writing.
fn update_expression(update: &ProductUpdate) -> UpdateExpression {
    let preview = Product {
        id: update.id,
        name: update.name.clone(),
        description: update.description.clone(),
        price: update.price,
        category: update.category.clone(),
        stock: 0,
        stock_counters: update.stock_counters,
        created_at: update.updated_at,
        updated_at: update.updated_at,
    };
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut assignments = Vec::new();
    for (name, value) in items::product_attributes(&preview) {
        if matches!(name, "stock" | "stockCounters" | "createdAt" | "id" | "entity") {
            continue;
        }
        assignments.push(format!("#{name} = :{name}"));
        names.insert(format!("#{name}"), name.to_owned());
        values.insert(format!(":{name}"), value);
    }
    // Only while the item holds the stock itself: once counted, the
    // change is a re-spread ([`DynamoStore::respread`]).
    let mut condition =
        "attribute_exists(PK) AND (attribute_not_exists(stockCounters) OR stockCounters = :one)".to_owned();
    values.insert(":one".into(), n(1));
    match update.stock {
        StockChange::Keep => {}
        StockChange::Set(stock) => {
            assignments.push("#stock = :stock".into());
            values.insert(":stock".into(), n(stock));
        }
        StockChange::Adjust(delta) => {
            assignments.push("#stock = #stock + :delta".into());
            values.insert(":delta".into(), n(delta));
            if delta < 0 {
                condition.push_str(" AND #stock >= :needed");
                values.insert(":needed".into(), n(delta.unsigned_abs()));
            } else {
                // Validation keeps delta within MAX_STOCK, so no underflow.
                condition.push_str(" AND #stock <= :ceiling");
                values.insert(":ceiling".into(), n(MAX_STOCK.saturating_sub(delta.unsigned_abs())));
            }
        }
    }
    if update.stock != StockChange::Keep {
        names.insert("#stock".into(), "stock".into());
    }
    // A product item written before listing entries existed carries the
    // listing indexes' keys itself: its first update takes them off.
    let set = format!("SET {} REMOVE GSI1PK, GSI1SK, GSI2PK, GSI2SK", assignments.join(", "));
    UpdateExpression { set, condition, names, values }
}

/// How one listing queries the table.
struct ListingPlan {
    index: &'static str,
    key_condition: &'static str,
    ascending: bool,
    filter: Option<String>,
    names: Option<HashMap<String, String>>,
    values: HashMap<String, AttributeValue>,
    page_size: i32,
    category: Option<String>,
}

impl ListingPlan {
    fn new(query: &ProductQuery) -> Self {
        let mut filters = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let (index, key_condition, ascending) = match &query.category {
            Some(category) => {
                let min = query.min_price.map_or(0, |m| m.minor());
                let max = query.max_price.map_or(999_999_999_999, |m| m.minor());
                values.insert(":pk".into(), s(category_partition(category)));
                values.insert(":lo".into(), s(format!("{min:012}#")));
                // '~' sorts after every character of an id.
                values.insert(":hi".into(), s(format!("{max:012}#~")));
                ("GSI2", "GSI2PK = :pk AND GSI2SK BETWEEN :lo AND :hi", true)
            }
            None => {
                values.insert(":pk".into(), s(PRODUCTS_PARTITION));
                let mut price = |op: &str, placeholder: &str, bound: Option<crate::domain::Money>| {
                    if let Some(bound) = bound {
                        filters.push(format!("#price {op} {placeholder}"));
                        names.insert("#price".to_owned(), "price".to_owned());
                        values.insert(placeholder.to_owned(), n(bound.minor()));
                    }
                };
                price(">=", ":minPrice", query.min_price);
                price("<=", ":maxPrice", query.max_price);
                ("GSI1", "GSI1PK = :pk", false)
            }
        };
        if let Some(in_stock) = query.in_stock {
            filters.push(if in_stock { "#stock > :zero" } else { "#stock = :zero" }.to_owned());
            names.insert("#stock".into(), "stock".into());
            values.insert(":zero".into(), n(0));
        }
        // Without filters every item read is returned: read one past the
        // page. With filters, read more per query so that a page takes few.
        let wanted = i32::try_from(query.limit + 1).unwrap_or(i32::MAX);
        let page_size = if filters.is_empty() { wanted } else { (wanted * 4).clamp(50, 1000) };
        ListingPlan {
            index,
            key_condition,
            ascending,
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            names: (!names.is_empty()).then_some(names),
            values,
            page_size,
            category: query.category.clone(),
        }
    }

    /// The index key of the item at `position`: where the query resumes.
    fn start_key(&self, position: &ListPosition) -> Item {
        let (id, index_keys) = match position {
            ListPosition::Newest { id } => {
                (*id, [("GSI1PK", PRODUCTS_PARTITION.to_owned()), ("GSI1SK", id.to_string())])
            }
            ListPosition::Price { price, id } => {
                let category = self.category.as_deref().unwrap_or_default();
                (*id, [("GSI2PK", category_partition(category)), ("GSI2SK", price_sort_key(*price, *id))])
            }
        };
        let mut key = Key::product_listing(id).into_item();
        key.extend(index_keys.into_iter().map(|(name, value)| (name.to_owned(), s(value))));
        key
    }

    /// The listing position of an index key DynamoDB returned.
    fn position_of_key(&self, key: &Item) -> Result<ListPosition, StoreError> {
        let corrupt = || StoreError::Internal("unexpected LastEvaluatedKey".into());
        let sort_key = items::attr_s(key, if self.category.is_some() { "GSI2SK" } else { "GSI1SK" })?;
        match self.category {
            None => Ok(ListPosition::Newest { id: ProductId::parse(&sort_key).ok_or_else(corrupt)? }),
            Some(_) => {
                let (price, id) = sort_key.split_once('#').ok_or_else(corrupt)?;
                Ok(ListPosition::Price {
                    price: price.parse().map_err(|_| corrupt())?,
                    id: ProductId::parse(id).ok_or_else(corrupt)?,
                })
            }
        }
    }
}

impl DynamoStore {
    /// Writes `product`'s listing entry unless a newer state of it is
    /// listed, or it was deleted since (a tombstone, below): a slower
    /// writer of an older state changes nothing. After an admin's update,
    /// and from the change feed when the stock reaches or leaves zero. A
    /// plain conditional put: a transaction checking the product item
    /// would conflict with the orders writing it.
    pub(super) async fn write_listing(&self, product: &Product) -> Result<(), StoreError> {
        let item = listing_item(product);
        let listed_at = item.get("listedAt").cloned().unwrap_or_else(|| n(0));
        let result = self
            .writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(listedAt) OR listedAt <= :listedAt")
            .expression_attribute_values(":listedAt", listed_at)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }
}

//! Where a product's units live, and how orders take them.
//!
//! A product with one stock counter (the default) keeps its units on its
//! own item, `stock`. A product with `n > 1` counters keeps them on `n`
//! counter items, `STOCK#<product>#<k>` / `STOCK`, each a partition of its
//! own: an order takes its units from one counter that has enough (from
//! several when none has), so a flash sale's orders write `n` keys, not
//! one. A partition takes about 1,000 write units a second and a
//! transactional write of a small item costs 2, so one item holds a
//! product near 500 orders a second, and `n` counters near `500 * n`.
//!
//! Reads sum the counters. The product item of a counted product keeps
//! `stock` as the total when an admin last wrote it: what its change-feed
//! images, and so the catalog's events, show. The counters' own changes
//! are in no event; the search index turns a counter reaching or leaving
//! zero into the product's availability (`search`).
//!
//! Which counter an order takes from is chosen from what this process last
//! read of the counters (its hints), and the write's conditions decide: a
//! take refused (the counter ran short, the product was re-spread, or its
//! counters came or went) re-reads the product and plans again, so a stale
//! hint costs a retry, never a unit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::{classify, send_transaction};
use super::items::{Item, Key, attr_s, attr_u64, n, product_from_item, s, stock_counters_of, timestamp};
use super::orders::items_failing;
use crate::domain::{Product, ProductId};
use crate::store::StoreError;

/// Plans an order's stock writes may be refused in a row (each time the
/// products are read again) before the request is told the product is
/// too busy (429).
const ATTEMPTS: usize = 4;

/// Counted products whose counters one process remembers: fixed memory.
const HINTS_KEPT: usize = 4096;

/// Which way an order's units move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// Taken from stock, each take conditioned on enough.
    Reserve,
    /// Given back.
    Release,
}

/// The item a take writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// The product item's own `stock` (a product with one counter).
    Item,
    /// Counter `k` of a counted product.
    Counter(u16),
}

/// Units of one product moved on one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Take {
    pub product: ProductId,
    pub place: Place,
    pub quantity: u64,
}

/// Why [`DynamoStore::send_with_stock`] wrote nothing.
pub(super) enum Refused {
    /// These products, read again, have less stock than their lines need.
    Short(Vec<ProductId>),
    /// The transaction failed for a reason of the caller's own items (or
    /// no condition at all): the error, and the position of the caller's
    /// first item in it.
    Other(Box<SdkError<TransactWriteItemsError, HttpResponse>>, usize),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(err: StoreError) -> Self {
        Refused::Store(err)
    }
}

/// What this process last read of each counted product's counters.
#[derive(Default)]
pub(super) struct CounterHints {
    counters: Mutex<HashMap<ProductId, Vec<u64>>>,
    /// Turns the choice among counters with enough, so that orders running
    /// at once in this process write different counters.
    turn: AtomicUsize,
}

impl CounterHints {
    /// Remembers `id`'s counters as just read; `None`: one counter.
    fn learn(&self, id: ProductId, counters: Option<Vec<u64>>) {
        let mut known = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        match counters {
            Some(counters) => {
                if known.len() >= HINTS_KEPT && !known.contains_key(&id) {
                    known.clear();
                }
                known.insert(id, counters);
            }
            None => {
                known.remove(&id);
            }
        }
    }

    /// The takes of `lines` by what is known of their products' counters.
    fn plan(&self, lines: &[(ProductId, u64)], direction: Direction) -> Vec<Take> {
        let known = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        lines
            .iter()
            .flat_map(|&(product, quantity)| {
                plan_line(known.get(&product).map(Vec::as_slice), product, quantity, direction, turn)
            })
            .collect()
    }

    /// Keeps the hints of `takes` that were written true.
    fn taken(&self, takes: &[Take], direction: Direction) {
        let mut known = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for take in takes {
            if let (Place::Counter(k), Some(counters)) = (take.place, known.get_mut(&take.product))
                && let Some(units) = counters.get_mut(usize::from(k))
            {
                *units = match direction {
                    Direction::Reserve => units.saturating_sub(take.quantity),
                    Direction::Release => units.saturating_add(take.quantity),
                };
            }
        }
    }
}

/// One line's takes. Units go back to one counter, any will do. Units are
/// taken from one counter that has them all, a different one each `turn`;
/// when none has, from the fullest down, as many as needed. When even all
/// of them together have not enough (by these hints), the fullest is asked
/// for the whole: its refusal has the product read again.
fn plan_line(
    counters: Option<&[u64]>,
    product: ProductId,
    quantity: u64,
    direction: Direction,
    turn: usize,
) -> Vec<Take> {
    let take = |place, quantity| Take { product, place, quantity };
    let counters = match counters {
        Some(counters) if counters.len() > 1 => counters,
        _ => return vec![take(Place::Item, quantity)],
    };
    let counter = |k: usize| Place::Counter(u16::try_from(k).unwrap_or(u16::MAX));
    if direction == Direction::Release {
        return vec![take(counter(turn % counters.len()), quantity)];
    }
    let enough: Vec<usize> = (0..counters.len()).filter(|&k| counters[k] >= quantity).collect();
    if !enough.is_empty() {
        return vec![take(counter(enough[turn % enough.len()]), quantity)];
    }
    let mut fullest: Vec<usize> = (0..counters.len()).collect();
    fullest.sort_by_key(|&k| std::cmp::Reverse(counters[k]));
    if counters.iter().sum::<u64>() < quantity {
        return vec![take(counter(fullest[0]), quantity)];
    }
    let mut left = quantity;
    let mut takes = Vec::new();
    for k in fullest {
        if left == 0 {
            break;
        }
        let units = counters[k].min(left);
        if units > 0 {
            takes.push(take(counter(k), units));
            left -= units;
        }
    }
    takes
}

/// `total` units over `counters` counters, as evenly as whole units go.
pub(super) fn spread(total: u64, counters: u16) -> Vec<u64> {
    let count = u64::from(counters.max(1));
    (0..count).map(|k| total / count + u64::from(k < total % count)).collect()
}

/// The condition that a product item is not counted: its own `stock` is
/// the product's.
const ONE_COUNTER: &str = "(attribute_not_exists(stockCounters) OR stockCounters = :one)";

impl DynamoStore {
    /// The product as stored, its stock the sum of its counters when it
    /// has several; strongly read. Teaches this process's hints.
    pub(super) async fn read_product(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        let Some(item) = self.get(Key::product(id)).await? else {
            self.hints.learn(id, None);
            return Ok(None);
        };
        let mut product = product_from_item(&item)?;
        if product.stock_counters > 1 {
            let counters = self.read_counters(id, product.stock_counters).await?;
            product.stock = counters.iter().sum();
            self.hints.learn(id, Some(counters));
        } else {
            self.hints.learn(id, None);
        }
        Ok(Some(product))
    }

    /// The units on each of a counted product's counters, each read
    /// strongly (one batch, not one snapshot: a read racing an admin's
    /// re-spread may see a total off by the units being moved; orders'
    /// own takes are each whole). A counter not there (a re-spread removed
    /// it) holds nothing.
    pub(super) async fn read_counters(&self, id: ProductId, count: u16) -> Result<Vec<u64>, StoreError> {
        let mut keys: Vec<Item> = (0..count).map(|k| Key::stock_counter(id, k).into_item()).collect();
        let mut found: HashMap<String, u64> = HashMap::new();
        for attempt in 0..8u32 {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression("PK, #stock")
                .expression_attribute_names("#stock", "stock")
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let output =
                self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(classify)?;
            for item in output.responses.and_then(|mut all| all.remove(&self.table)).unwrap_or_default() {
                found.insert(attr_s(&item, "PK")?, attr_u64(&item, "stock")?);
            }
            keys = output
                .unprocessed_keys
                .and_then(|mut left| left.remove(&self.table))
                .map(|left| left.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok((0..count).map(|k| found.get(&format!("STOCK#{id}#{k}")).copied().unwrap_or(0)).collect());
            }
            tokio::time::sleep(Duration::from_millis(10 << attempt.min(5))).await;
        }
        Err(StoreError::Unavailable("stock counter reads kept coming back unprocessed".into()))
    }

    /// The counter items of a counted product created with `product.stock`
    /// spread over them.
    pub(super) fn new_counters(&self, product: &Product) -> Result<Vec<TransactWriteItem>, StoreError> {
        if product.stock_counters <= 1 {
            return Ok(Vec::new());
        }
        (0..product.stock_counters)
            .zip(spread(product.stock, product.stock_counters))
            .map(|(k, units)| self.put(counter_item(product.id, k, units), "attribute_not_exists(PK)"))
            .collect()
    }

    /// The writes of `takes`, each conditioned so that it moves units only
    /// where they are: a product item only while it is not counted, a
    /// counter only while it exists, and a reserve only from enough.
    fn stock_writes(
        &self,
        takes: &[Take],
        direction: Direction,
        at: OffsetDateTime,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let sign = if direction == Direction::Reserve { "-" } else { "+" };
        let enough = if direction == Direction::Reserve { " AND #stock >= :quantity" } else { "" };
        takes
            .iter()
            .map(|take| match take.place {
                // Refused, the item as it was tells why without a read.
                Place::Item => self.update_telling(
                    Key::product(take.product),
                    &format!("SET #stock = #stock {sign} :quantity, #updatedAt = :now"),
                    &format!("attribute_exists(PK) AND {ONE_COUNTER}{enough}"),
                    &[("#stock", "stock"), ("#updatedAt", "updatedAt")],
                    vec![(":quantity", n(take.quantity)), (":now", timestamp(at)), (":one", n(1))],
                    Some(ReturnValuesOnConditionCheckFailure::AllOld),
                ),
                Place::Counter(k) => self.update(
                    Key::stock_counter(take.product, k),
                    &format!("SET #stock = #stock {sign} :quantity"),
                    &format!("attribute_exists(PK){enough}"),
                    &[("#stock", "stock")],
                    vec![(":quantity", n(take.quantity))],
                ),
            })
            .collect()
    }

    /// One transaction: `lines`' units moved `direction` (planned from the
    /// hints), then the caller's `own` items. A refused take has its
    /// product read again and the plan made anew, up to [`ATTEMPTS`] times.
    /// Reserving, a product now short (or gone) is [`Refused::Short`];
    /// releasing, a product gone since is skipped (its units have nowhere
    /// to go). A failure of the caller's items is theirs to read
    /// ([`Refused::Other`]).
    pub(super) async fn send_with_stock(
        &self,
        lines: &[(ProductId, u64)],
        direction: Direction,
        at: OffsetDateTime,
        own: &[TransactWriteItem],
    ) -> Result<(), Refused> {
        let mut lines = merged(lines);
        for attempt in 0..ATTEMPTS {
            let takes = self.hints.plan(&lines, direction);
            let mut writes = self.stock_writes(&takes, direction, at)?;
            let first_own = writes.len();
            writes.extend(own.iter().cloned());
            let total = writes.len();
            let request = self.writer.transact_write_items().set_transact_items(Some(writes));
            let err = match send_transaction(request).await {
                Ok(_) => {
                    self.hints.taken(&takes, direction);
                    return Ok(());
                }
                Err(err) => err,
            };
            let failing = items_failing(&err, total);
            if failing.is_empty() || failing.iter().any(|&i| i >= first_own) {
                return Err(Refused::Other(Box::new(err), first_own));
            }
            let mut short = Vec::new();
            let mut refused = Vec::new();
            for &i in &failing {
                let id = takes[i].product;
                match (takes[i].place, direction, item_refused(&err, i)) {
                    // The product item is gone (releasing, the read below
                    // makes sure before the units are dropped).
                    (Place::Item, Direction::Reserve, None) => short.push(id),
                    // It holds its own stock, and not enough of it.
                    (Place::Item, Direction::Reserve, Some(item)) if stock_counters_of(&item).is_ok_and(|n| n <= 1) => {
                        short.push(id)
                    }
                    // Counted now, or a counter short or gone: read again.
                    _ => refused.push(id),
                }
            }
            refused.dedup();
            for id in refused {
                match self.read_product(id).await? {
                    None if direction == Direction::Release => lines.retain(|(line, _)| *line != id),
                    None => short.push(id),
                    Some(product) => {
                        let needed = lines.iter().filter(|(line, _)| *line == id).map(|(_, q)| q).sum::<u64>();
                        if direction == Direction::Reserve && product.stock < needed {
                            short.push(id);
                        }
                    }
                }
            }
            if !short.is_empty() {
                return Err(Refused::Short(short));
            }
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(rand::random_range(1..10))).await;
            }
        }
        Err(Refused::Store(StoreError::Contended("the product's stock kept moving under this order".into())))
    }

    /// Deletes of every counter of a counted product (none for one counter).
    pub(super) fn counter_deletes(&self, id: ProductId, count: u16) -> Result<Vec<TransactWriteItem>, StoreError> {
        if count <= 1 {
            return Ok(Vec::new());
        }
        (0..count)
            .map(|k| {
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Key::stock_counter(id, k).into_item()))
                    .build()
                    .map(|delete| TransactWriteItem::builder().delete(delete).build())
                    .map_err(|e| StoreError::Internal(e.to_string()))
            })
            .collect()
    }

    /// Writes moving a product from `from` (its units as read: one entry
    /// for the product item, else one per counter) to `total` units over
    /// `to` counters, each conditioned on what was read, so an order
    /// landing between the read and the write refuses the whole move. The
    /// product item's own write is the caller's, conditioned on its
    /// `stockCounters` (and, for one counter, its `stock`).
    pub(super) fn respread_writes(
        &self,
        id: ProductId,
        from: &[u64],
        total: u64,
        to: u16,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let was_counted = from.len() > 1;
        let shares = if to > 1 { spread(total, to) } else { Vec::new() };
        let mut writes = Vec::new();
        for k in 0..shares.len().max(if was_counted { from.len() } else { 0 }) {
            let counter = u16::try_from(k).map_err(|e| StoreError::Internal(e.to_string()))?;
            let old = was_counted.then(|| from.get(k).copied()).flatten();
            let write = match (shares.get(k), old) {
                (Some(&units), Some(old)) => self.update(
                    Key::stock_counter(id, counter),
                    "SET #stock = :units",
                    "#stock = :old",
                    &[("#stock", "stock")],
                    vec![(":units", n(units)), (":old", n(old))],
                )?,
                (Some(&units), None) => self.put(counter_item(id, counter, units), "attribute_not_exists(PK)")?,
                (None, Some(old)) => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(Key::stock_counter(id, counter).into_item()))
                        .condition_expression("#stock = :old")
                        .expression_attribute_names("#stock", "stock")
                        .expression_attribute_values(":old", n(old))
                        .build()
                        .map_err(|e| StoreError::Internal(e.to_string()))?;
                    TransactWriteItem::builder().delete(delete).build()
                }
                (None, None) => continue,
            };
            writes.push(write);
        }
        Ok(writes)
    }
}

/// The item as it was of a transaction's `index`-th write, when its
/// condition failed and it asked for it (`None`: no item there).
fn item_refused(err: &SdkError<TransactWriteItemsError, HttpResponse>, index: usize) -> Option<Item> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancelled.cancellation_reasons().get(index)?.item().cloned()
        }
        _ => None,
    }
}

/// A counter item: in no index, never an entity of the change feed.
fn counter_item(id: ProductId, counter: u16, units: u64) -> Item {
    let mut item = Key::stock_counter(id, counter).into_item();
    item.extend([
        ("entity".to_owned(), s("stockCounter")),
        ("productId".to_owned(), s(id.to_string())),
        ("stock".to_owned(), n(units)),
    ]);
    item
}

/// The product a counter item's key names, and its units: what a stream
/// image of a counter says.
pub(super) fn counter_of(item: &Item) -> Option<(ProductId, u64)> {
    let pk = match item.get("PK") {
        Some(AttributeValue::S(pk)) if pk.starts_with("STOCK#") => pk,
        _ => return None,
    };
    let (product, _) = pk.strip_prefix("STOCK#")?.split_once('#')?;
    Some((ProductId::parse(product)?, attr_u64(item, "stock").unwrap_or(0)))
}

/// Lines of the same product as one, in first-seen order.
fn merged(lines: &[(ProductId, u64)]) -> Vec<(ProductId, u64)> {
    let mut totals: BTreeMap<ProductId, u64> = BTreeMap::new();
    let mut order = Vec::new();
    for &(id, quantity) in lines {
        let total = totals.entry(id).or_insert_with(|| {
            order.push(id);
            0
        });
        *total = total.saturating_add(quantity);
    }
    order.into_iter().map(|id| (id, totals[&id])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(counters: Option<&[u64]>, quantity: u64, direction: Direction, turn: usize) -> Vec<(Place, u64)> {
        let id = ProductId::new();
        plan_line(counters, id, quantity, direction, turn).into_iter().map(|t| (t.place, t.quantity)).collect()
    }

    #[test]
    fn a_product_of_one_counter_moves_units_on_its_item() {
        assert_eq!(plan(None, 3, Direction::Reserve, 0), [(Place::Item, 3)]);
        assert_eq!(plan(Some(&[9]), 3, Direction::Release, 5), [(Place::Item, 3)]);
    }

    #[test]
    fn orders_in_turn_take_from_different_counters_that_have_enough() {
        let counters = [5, 0, 5, 2];
        let chosen: Vec<_> = (0..4).map(|turn| plan(Some(&counters), 3, Direction::Reserve, turn)).collect();
        assert_eq!(chosen[0], [(Place::Counter(0), 3)]);
        assert_eq!(chosen[1], [(Place::Counter(2), 3)]);
        assert_eq!(chosen[2], [(Place::Counter(0), 3)]);
    }

    #[test]
    fn a_quantity_no_counter_has_alone_is_taken_from_the_fullest_down() {
        assert_eq!(
            plan(Some(&[2, 4, 1, 3]), 8, Direction::Reserve, 0),
            [(Place::Counter(1), 4), (Place::Counter(3), 3), (Place::Counter(0), 1)]
        );
    }

    #[test]
    fn more_than_all_counters_hold_asks_the_fullest_for_all_so_it_is_refused_and_read_again() {
        assert_eq!(plan(Some(&[2, 4, 1]), 8, Direction::Reserve, 0), [(Place::Counter(1), 8)]);
    }

    #[test]
    fn units_go_back_to_any_counter() {
        assert_eq!(plan(Some(&[0, 0, 0]), 2, Direction::Release, 4), [(Place::Counter(1), 2)]);
    }

    #[test]
    fn a_spread_is_even_and_exact() {
        assert_eq!(spread(10, 4), [3, 3, 2, 2]);
        assert_eq!(spread(3, 8).iter().sum::<u64>(), 3);
        assert_eq!(spread(7, 1), [7]);
    }

    #[test]
    fn hints_follow_what_was_written() {
        let hints = CounterHints::default();
        let id = ProductId::new();
        hints.learn(id, Some(vec![1, 1]));
        let takes = hints.plan(&[(id, 1)], Direction::Reserve);
        hints.taken(&takes, Direction::Reserve);
        let next = hints.plan(&[(id, 1)], Direction::Reserve);
        assert_ne!(takes[0].place, next[0].place, "the emptied counter is not chosen again");
        hints.learn(id, None);
        assert_eq!(hints.plan(&[(id, 1)], Direction::Reserve)[0].place, Place::Item);
    }

    #[test]
    fn lines_of_one_product_are_one() {
        let (a, b) = (ProductId::new(), ProductId::new());
        assert_eq!(merged(&[(a, 1), (b, 2), (a, 3)]), [(a, 4), (b, 2)]);
    }

    #[test]
    fn a_counter_image_names_its_product() {
        let id = ProductId::new();
        assert_eq!(counter_of(&counter_item(id, 3, 12)), Some((id, 12)));
        assert_eq!(counter_of(&Key::product(id).into_item()), None);
    }
}

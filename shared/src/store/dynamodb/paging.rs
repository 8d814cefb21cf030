//! The loop every paged listing runs: one index query after another from a
//! start key, decoding items until the page has one more than it shows (so
//! there is a next page) or the partition ends, within a budget of queries
//! that bounds the cost of a very selective filter.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::errors::classify;
use super::items::Item;
use crate::store::StoreError;

/// A page's items, and where the next page starts.
pub(super) struct Collected<T> {
    pub items: Vec<T>,
    end: End,
}

enum End {
    /// The partition has no more items.
    Done,
    /// More items follow the page's last item.
    AfterLastItem,
    /// The query budget ran out: resume after this key, the last examined.
    AfterKey(Item),
}

/// What one page may spend: queries, and read units (summed from each
/// query's `ConsumedCapacity`, which a request with such a budget must ask
/// for). No query starts once either is spent, and a query after the
/// first asks for no more items than the units left buy at the size of
/// those read so far, so the page ends near its units, not a query past.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    pub queries: usize,
    pub read_units: f64,
}

impl From<usize> for Budget {
    /// A number of queries, read units unbounded.
    fn from(queries: usize) -> Self {
        Budget { queries, read_units: f64::INFINITY }
    }
}

/// Runs `request` from `start`, within `budget`, until `limit` items and
/// one more have decoded.
pub(super) async fn collect<T>(
    request: QueryFluentBuilder,
    mut start: Option<Item>,
    limit: usize,
    budget: impl Into<Budget>,
    decode: impl Fn(&Item) -> Result<T, StoreError>,
) -> Result<Collected<T>, StoreError> {
    let budget = budget.into();
    let mut items = Vec::with_capacity(limit + 1);
    let (mut read_units, mut examined) = (0.0, 0);
    for _ in 0..budget.queries {
        let mut next = request.clone();
        if examined > 0 && budget.read_units.is_finite() {
            let affordable = (budget.read_units - read_units) / (read_units / f64::from(examined));
            let size = next.get_limit().unwrap_or(i32::MAX).min(affordable.max(1.0) as i32);
            next = next.limit(size);
        }
        let output = next.set_exclusive_start_key(start).send().await.map_err(classify)?;
        examined += output.scanned_count().max(0);
        for item in output.items() {
            items.push(decode(item)?);
            if items.len() > limit {
                items.truncate(limit);
                return Ok(Collected { items, end: End::AfterLastItem });
            }
        }
        read_units += output.consumed_capacity().and_then(|spent| spent.capacity_units()).unwrap_or(0.0);
        start = output.last_evaluated_key;
        if start.is_none() {
            return Ok(Collected { items, end: End::Done });
        }
        if read_units >= budget.read_units {
            break;
        }
    }
    Ok(Collected { items, end: start.map_or(End::Done, End::AfterKey) })
}

impl<T> Collected<T> {
    /// The next page's position: after the page's last item (`of_item`), or
    /// after the last key examined (`of_key`) when the budget ran out.
    pub fn next<P>(
        &self,
        of_item: impl Fn(&T) -> P,
        of_key: impl Fn(&Item) -> Result<Option<P>, StoreError>,
    ) -> Result<Option<P>, StoreError> {
        match &self.end {
            End::Done => Ok(None),
            End::AfterLastItem => Ok(self.items.last().map(of_item)),
            End::AfterKey(key) => of_key(key),
        }
    }
}

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

/// Runs `request` from `start`, at most `budget` queries, until `limit`
/// items and one more have decoded.
pub(super) async fn collect<T>(
    request: QueryFluentBuilder,
    mut start: Option<Item>,
    limit: usize,
    budget: usize,
    decode: impl Fn(&Item) -> Result<T, StoreError>,
) -> Result<Collected<T>, StoreError> {
    let mut items = Vec::with_capacity(limit + 1);
    for _ in 0..budget {
        let output = request.clone().set_exclusive_start_key(start).send().await.map_err(classify)?;
        for item in output.items() {
            items.push(decode(item)?);
            if items.len() > limit {
                items.truncate(limit);
                return Ok(Collected { items, end: End::AfterLastItem });
            }
        }
        start = output.last_evaluated_key;
        if start.is_none() {
            return Ok(Collected { items, end: End::Done });
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

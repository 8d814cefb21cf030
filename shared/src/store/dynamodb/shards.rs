//! Write-sharded index partitions, and the reader that merges them.
//!
//! An index partition that every order writes, with a time-ordered sort
//! key, takes all of those writes at its end, where DynamoDB cannot split
//! it for heat: about 1,000 write units a second is its ceiling. So such a
//! partition is `<partition>#<shard>`, the shard drawn from the item's id
//! (UUID v7: its low bits are random), and a reader queries every shard and
//! merges them in sort-key order ([`merge`]).
//!
//! | partition | shards | what writes it |
//! | --- | ---: | --- |
//! | GSI2 `ORDERS#STATUS#<status>#<shard>` | [`STATUS_SHARDS`] | every order placed and every status change |
//! | GSI1 `EVENTS#<shard>`, GSI2 `EVENTS#<type>#<shard>` | [`EVENT_SHARDS`] | every logged event |
//!
//! Items written before sharding sit in the unsharded partition, which
//! every reader also merges (an empty partition costs one small query).

use std::collections::VecDeque;
use std::future::Future;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::errors::classify;
use super::items::Item;
use crate::store::StoreError;

/// Shards of each order status partition: the pending one takes about 3.2
/// write units an order (the put, the move out), so 48 shards reach 1,000
/// units a second each near 15,000 orders a second on average; ids spread
/// unevenly over a short run, so the hottest shard of a measured minute
/// runs about a third above the average.
pub(super) const STATUS_SHARDS: u32 = 48;

/// Shards of the event log's partitions: about 6.5 write units an order
/// land in `EVENTS` (an order's events, its products' stock changes), so
/// 96 shards reach their limit near 14,000 orders a second on average.
pub(super) const EVENT_SHARDS: u32 = 96;

/// The shard of the item with id `id`.
pub(super) fn shard_of(id: uuid::Uuid, shards: u32) -> u32 {
    (id.as_u128() % u128::from(shards)) as u32
}

/// `partition`'s shard `shard`.
pub(super) fn sharded(partition: &str, shard: u32) -> String {
    format!("{partition}#{shard:02}")
}

/// Every partition a reader of `partition` merges: each shard, and the
/// unsharded partition of items written before sharding.
pub(super) fn every_shard(partition: &str, shards: u32) -> Vec<String> {
    (0..shards).map(|shard| sharded(partition, shard)).chain(std::iter::once(partition.to_owned())).collect()
}

/// One query's answer: its items, and where the next one would start.
pub(super) struct Fetched {
    pub items: Vec<Item>,
    pub last_key: Option<Item>,
}

/// Runs `request` (one shard's query) from `start` for `count` items: what
/// every [`merge`] caller's `fetch` ends with.
pub(super) async fn fetch(request: QueryFluentBuilder, start: Option<Item>, count: i32) -> Result<Fetched, StoreError> {
    let output = request.set_exclusive_start_key(start).limit(count).send().await.map_err(classify)?;
    Ok(Fetched { items: output.items.unwrap_or_default(), last_key: output.last_evaluated_key })
}

/// What [`merge`] read: up to `limit` items in order, and whether any
/// shard has more after them.
pub(super) struct Merged {
    pub items: Vec<Item>,
    pub more: bool,
}

struct Shard {
    partition: String,
    buffered: VecDeque<Item>,
    /// Where its next query starts; `None` once it has no more.
    next: Option<Option<Item>>,
}

/// Merges `partitions` in the order of each item's `sort_key` attribute
/// (`ascending` or newest first), `limit` items at most, querying each
/// partition with `fetch(partition, start, count)` only when its next item
/// is needed: a k-way merge, so a page of 20 over 48 shards reads about
/// two items a shard, not 20.
///
/// A query that returns no item (all filtered out) ends its shard: the
/// callers' filters are monotonic in sort order (expired events, all of
/// them older than the rest), or absent.
pub(super) async fn merge<F, Fut>(
    partitions: Vec<String>,
    sort_key: &str,
    limit: usize,
    ascending: bool,
    fetch: F,
) -> Result<Merged, StoreError>
where
    F: Fn(String, Option<Item>, i32) -> Fut,
    Fut: Future<Output = Result<Fetched, StoreError>>,
{
    let chunk = i32::try_from(limit / partitions.len().max(1) + 2).unwrap_or(i32::MAX);
    let mut shards: Vec<Shard> = partitions
        .into_iter()
        .map(|partition| Shard { partition, buffered: VecDeque::new(), next: Some(None) })
        .collect();
    let key_of = |item: &Item| match item.get(sort_key) {
        Some(AttributeValue::S(key)) => Ok(key.clone()),
        _ => Err(StoreError::Internal(format!("an index item without {sort_key}"))),
    };
    let mut items = Vec::with_capacity(limit);
    loop {
        // Every shard whose next item is unknown is asked, all at once.
        let asks: Vec<_> = shards
            .iter_mut()
            .filter(|shard| shard.buffered.is_empty())
            .filter_map(|shard| shard.next.take().map(|start| (shard, start)))
            .map(|(shard, start)| {
                let answer = fetch(shard.partition.clone(), start, chunk);
                async move { (shard, answer.await) }
            })
            .collect();
        for (shard, answer) in futures::future::join_all(asks).await {
            let answer = answer?;
            if !answer.items.is_empty() {
                shard.next = answer.last_key.map(Some);
            }
            shard.buffered.extend(answer.items);
        }
        let mut best: Option<(usize, String)> = None;
        for (index, shard) in shards.iter().enumerate() {
            let Some(head) = shard.buffered.front() else { continue };
            let key = key_of(head)?;
            let better = match &best {
                None => true,
                Some((_, best_key)) => (key < *best_key) == ascending && key != *best_key,
            };
            if better {
                best = Some((index, key));
            }
        }
        let Some((index, _)) = best else { return Ok(Merged { items, more: false }) };
        if items.len() == limit {
            return Ok(Merged { items, more: true });
        }
        items.extend(shards[index].buffered.pop_front());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn item(key: &str) -> Item {
        HashMap::from([("SK".to_owned(), AttributeValue::S(key.to_owned()))])
    }

    fn key(item: &Item) -> String {
        match item.get("SK") {
            Some(AttributeValue::S(key)) => key.clone(),
            _ => unreachable!(),
        }
    }

    /// Partitions of sorted keys, served `count` at a time in the asked
    /// direction, with every query recorded.
    struct Fake {
        partitions: HashMap<String, Vec<String>>,
        queries: Mutex<Vec<(String, i32)>>,
    }

    impl Fake {
        fn fetch(&self, partition: String, start: Option<Item>, count: i32, ascending: bool) -> Fetched {
            self.queries.lock().unwrap().push((partition.clone(), count));
            let mut keys = self.partitions.get(&partition).cloned().unwrap_or_default();
            keys.sort();
            if !ascending {
                keys.reverse();
            }
            let after = start.map(|s| key(&s));
            let rest: Vec<String> = keys
                .into_iter()
                .filter(|k| after.as_ref().is_none_or(|a| if ascending { k > a } else { k < a }))
                .collect();
            let page: Vec<Item> = rest.iter().take(count as usize).map(|k| item(k)).collect();
            let last_key = if rest.len() > page.len() { page.last().cloned() } else { None };
            Fetched { items: page, last_key }
        }
    }

    async fn run(fake: &Fake, limit: usize, ascending: bool) -> Merged {
        let partitions: Vec<String> = {
            let mut names: Vec<String> = fake.partitions.keys().cloned().collect();
            names.sort();
            names
        };
        merge(partitions, "SK", limit, ascending, |partition, start, count| {
            let answer = fake.fetch(partition, start, count, ascending);
            async move { Ok(answer) }
        })
        .await
        .unwrap()
    }

    fn fake(partitions: &[(&str, &[&str])]) -> Fake {
        Fake {
            partitions: partitions
                .iter()
                .map(|(name, keys)| ((*name).to_owned(), keys.iter().map(|k| (*k).to_owned()).collect()))
                .collect(),
            queries: Mutex::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn shards_merge_into_one_order_whichever_shard_holds_the_next_item() {
        // One shard holds most of the newest items: it is read again.
        let fake = fake(&[("a", &["09", "08", "07", "06", "01"]), ("b", &["05", "02"]), ("c", &[])]);
        let newest = run(&fake, 5, false).await;
        assert_eq!(newest.items.iter().map(key).collect::<Vec<_>>(), ["09", "08", "07", "06", "05"]);
        assert!(newest.more);
        let oldest = run(&fake, 3, true).await;
        assert_eq!(oldest.items.iter().map(key).collect::<Vec<_>>(), ["01", "02", "05"]);
        let all = run(&fake, 20, false).await;
        assert_eq!(all.items.len(), 7);
        assert!(!all.more, "every shard read to its end");
    }

    #[tokio::test]
    async fn a_page_reads_a_few_items_a_shard_not_a_page_each() {
        let keys: Vec<Vec<String>> = (0..40).map(|s| (0..50).map(|i| format!("{:04}", i * 40 + s)).collect()).collect();
        let partitions: Vec<(String, Vec<&str>)> = keys
            .iter()
            .enumerate()
            .map(|(s, k)| (format!("p{s:02}"), k.iter().map(String::as_str).collect()))
            .collect();
        let listed: Vec<(&str, &[&str])> = partitions.iter().map(|(p, k)| (p.as_str(), k.as_slice())).collect();
        let fake = fake(&listed);
        let page = run(&fake, 20, false).await;
        let expected: Vec<String> = (0..20).map(|i| format!("{:04}", 1999 - i)).collect();
        assert_eq!(page.items.iter().map(key).collect::<Vec<_>>(), expected);
        let queries = fake.queries.lock().unwrap();
        assert_eq!(queries.len(), 40, "one query a shard: {queries:?}");
        assert!(queries.iter().all(|(_, count)| *count == 2));
    }

    #[test]
    fn an_items_shard_follows_from_its_id_and_every_reader_includes_the_unsharded_partition() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(shard_of(id, 40), shard_of(id, 40));
        assert!(shard_of(id, 40) < 40);
        let spread: std::collections::HashSet<u32> = (0..2_000).map(|_| shard_of(uuid::Uuid::now_v7(), 40)).collect();
        assert_eq!(spread.len(), 40, "new ids reach every shard");
        assert_eq!(sharded("EVENTS", 7), "EVENTS#07");
        let all = every_shard("ORDERS#STATUS#pending", 3);
        assert_eq!(
            all,
            [
                "ORDERS#STATUS#pending#00",
                "ORDERS#STATUS#pending#01",
                "ORDERS#STATUS#pending#02",
                "ORDERS#STATUS#pending"
            ]
        );
    }
}

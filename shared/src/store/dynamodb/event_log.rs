//! The admin event log in the table: one item per event, keyed by its id
//! so a redelivered event overwrites itself, listed through GSI1 (all) or
//! GSI2 (one type) by log position, each in [`EVENT_SHARDS`] shards merged
//! by the reader (every order writes several events), and deleted by TTL
//! after 30 days.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::classify;
use super::items::{EVENTS_PARTITION, Item, Key, attr_s, event_type_partition, n, s};
use super::shards::{EVENT_SHARDS, every_shard, fetch, merge, shard_of, sharded};
use crate::events::{Event, LOG_RETENTION};
use crate::store::{EventPage, EventQuery, EventStore, StoreError, event_position};

fn event_to_item(event: &Event) -> Result<Item, StoreError> {
    let json = serde_json::to_string(event).map_err(|e| StoreError::Internal(e.to_string()))?;
    let position = event_position(event);
    let shard = shard_of(event.id, EVENT_SHARDS);
    let mut item = Key::event(event.id).into_item();
    item.extend([
        ("entity".to_owned(), s("event")),
        ("eventType".to_owned(), s(event.event_type().as_str())),
        ("event".to_owned(), s(json)),
        ("GSI1PK".to_owned(), s(sharded(EVENTS_PARTITION, shard))),
        ("GSI1SK".to_owned(), s(position.clone())),
        ("GSI2PK".to_owned(), s(sharded(&event_type_partition(event.event_type()), shard))),
        ("GSI2SK".to_owned(), s(position)),
        ("expiresAt".to_owned(), n((event.occurred_at + LOG_RETENTION).unix_timestamp())),
    ]);
    Ok(item)
}

fn event_from_item(item: &Item) -> Result<Event, StoreError> {
    serde_json::from_str(&attr_s(item, "event")?).map_err(|e| StoreError::Internal(format!("event item: {e}")))
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        // An unconditional put: the same event twice is the same item.
        self.writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_to_item(event)?))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let (index, partition) = match query.event_type {
            Some(event_type) => ("GSI2", event_type_partition(event_type)),
            None => ("GSI1", EVENTS_PARTITION.to_owned()),
        };
        let sort_key = format!("{index}SK");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let merged = merge(every_shard(&partition, EVENT_SHARDS), &sort_key, query.limit, false, |pk, start, count| {
            let names = HashMap::from([
                ("#pk".to_owned(), format!("{index}PK")),
                ("#sk".to_owned(), sort_key.clone()),
                ("#expires".to_owned(), "expiresAt".to_owned()),
            ]);
            let values = HashMap::from([
                (":pk".to_owned(), s(pk)),
                // Above every position when there is no previous page.
                (":after".to_owned(), AttributeValue::S(query.after.clone().unwrap_or_else(|| "~".into()))),
                (":now".to_owned(), n(now)),
            ]);
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk AND #sk < :after")
                // TTL deletes within days, not at once: expired items are
                // filtered out, so the log keeps exactly 30 days. They are
                // the oldest, so a query that finds only expired items
                // ends its shard, as `merge` expects.
                .filter_expression("#expires > :now")
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(false);
            fetch(request, start, count)
        })
        .await?;
        let items: Vec<Event> = merged.items.iter().map(event_from_item).collect::<Result<_, _>>()?;
        let next = if merged.more { items.last().map(event_position) } else { None };
        Ok(EventPage { items, next })
    }
}

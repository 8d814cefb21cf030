//! The admin event log in the table: one item per event, keyed by its id
//! so a redelivered event overwrites itself, listed through GSI1 (all) or
//! GSI2 (one type) by log position, and deleted by TTL after 30 days.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::classify;
use super::items::{EVENTS_PARTITION, Item, Key, attr_s, event_type_partition, n, s};
use super::paging::collect;
use crate::events::{Event, LOG_RETENTION};
use crate::store::{EventPage, EventQuery, EventStore, StoreError, event_position};

/// Index queries one page may make while expired items fill it.
const MAX_QUERIES_PER_PAGE: usize = 5;

fn event_to_item(event: &Event) -> Result<Item, StoreError> {
    let json = serde_json::to_string(event).map_err(|e| StoreError::Internal(e.to_string()))?;
    let position = event_position(event);
    let mut item = Key::event(event.id).into_item();
    item.extend([
        ("entity".to_owned(), s("event")),
        ("eventType".to_owned(), s(event.event_type().as_str())),
        ("event".to_owned(), s(json)),
        ("GSI1PK".to_owned(), s(EVENTS_PARTITION)),
        ("GSI1SK".to_owned(), s(position.clone())),
        ("GSI2PK".to_owned(), s(event_type_partition(event.event_type()))),
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
        let (pk, sk) = (format!("{index}PK"), format!("{index}SK"));
        let condition = if query.after.is_some() { "#pk = :pk AND #sk < :after" } else { "#pk = :pk" };
        let mut names = HashMap::from([("#pk".to_owned(), pk), ("#expires".to_owned(), "expiresAt".to_owned())]);
        let mut values = HashMap::from([
            (":pk".to_owned(), s(partition)),
            (":now".to_owned(), n(OffsetDateTime::now_utc().unix_timestamp())),
        ]);
        if let Some(after) = &query.after {
            names.insert("#sk".into(), sk);
            values.insert(":after".into(), AttributeValue::S(after.clone()));
        }
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            // TTL deletes within days, not at once: expired items are
            // filtered out, so the log keeps exactly 30 days.
            .filter_expression("#expires > :now")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(false)
            .limit(i32::try_from(query.limit + 1).unwrap_or(i32::MAX));
        let page = collect(request, None, query.limit, MAX_QUERIES_PER_PAGE, event_from_item).await?;
        let next = page.next(event_position, |key| attr_s(key, &format!("{index}SK")).map(Some))?;
        Ok(EventPage { items: page.items, next })
    }
}

//! The admin event log in redb: events by log position, an index by type,
//! and an id table that makes logging idempotent. Events older than the
//! retention are skipped by reads and pruned a batch at a time by writes.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
use time::OffsetDateTime;

use super::{EVENT_IDS, EVENTS, EVENTS_BY_TYPE, EmbeddedStore, internal};
use crate::events::{Event, LOG_RETENTION};
use crate::store::{EventPage, EventQuery, EventStore, StoreError, event_position};

/// Expired events one write prunes at most, so no write pays for a backlog.
const PRUNE_BATCH: usize = 100;

fn retention_bound(now: OffsetDateTime) -> String {
    format!("{:020}", (now - LOG_RETENTION).unix_timestamp_nanos().max(0))
}

fn decode(bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Internal(format!("corrupt event record: {e}")))
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(event).map_err(|e| StoreError::Internal(e.to_string()))?;
        let (id, kind, position) = (event.id.to_string(), event.event_type().as_str(), event_position(event));
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut ids = txn.open_table(EVENT_IDS).map_err(internal)?;
                if ids.get(id.as_str()).map_err(internal)?.is_some() {
                    return Ok(());
                }
                ids.insert(id.as_str(), position.as_str()).map_err(internal)?;
                let mut events = txn.open_table(EVENTS).map_err(internal)?;
                events.insert(position.as_str(), bytes.as_slice()).map_err(internal)?;
                let mut by_type = txn.open_table(EVENTS_BY_TYPE).map_err(internal)?;
                by_type.insert((kind, position.as_str()), ()).map_err(internal)?;
                let bound = retention_bound(OffsetDateTime::now_utc());
                let expired: Vec<(String, Vec<u8>)> = events
                    .range::<&str>(..bound.as_str())
                    .map_err(internal)?
                    .take(PRUNE_BATCH)
                    .map(|entry| entry.map(|(k, v)| (k.value().to_owned(), v.value().to_vec())).map_err(internal))
                    .collect::<Result<_, _>>()?;
                for (old_position, old_bytes) in expired {
                    let old = decode(&old_bytes)?;
                    events.remove(old_position.as_str()).map_err(internal)?;
                    by_type.remove((old.event_type().as_str(), old_position.as_str())).map_err(internal)?;
                    ids.remove(old.id.to_string().as_str()).map_err(internal)?;
                }
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let query = query.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let events = txn.open_table(EVENTS).map_err(internal)?;
            let bound = retention_bound(OffsetDateTime::now_utc());
            let positions: Vec<String> = match query.event_type {
                None => {
                    let upper = query.after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                    events
                        .range::<&str>((Bound::Included(bound.as_str()), upper))
                        .map_err(internal)?
                        .rev()
                        .take(query.limit + 1)
                        .map(|entry| entry.map(|(k, _)| k.value().to_owned()).map_err(internal))
                        .collect::<Result<_, _>>()?
                }
                Some(event_type) => {
                    let by_type = txn.open_table(EVENTS_BY_TYPE).map_err(internal)?;
                    let kind = event_type.as_str();
                    let upper = match query.after.as_deref() {
                        Some(after) => Bound::Excluded((kind, after)),
                        None => Bound::Included((kind, "~")),
                    };
                    by_type
                        .range((Bound::Included((kind, bound.as_str())), upper))
                        .map_err(internal)?
                        .rev()
                        .take(query.limit + 1)
                        .map(|entry| entry.map(|(k, _)| k.value().1.to_owned()).map_err(internal))
                        .collect::<Result<_, _>>()?
                }
            };
            let mut items = Vec::with_capacity(positions.len());
            for position in &positions {
                if let Some(bytes) = events.get(position.as_str()).map_err(internal)? {
                    items.push(decode(bytes.value())?);
                }
            }
            let next = if items.len() > query.limit {
                items.truncate(query.limit);
                items.last().map(event_position)
            } else {
                None
            };
            Ok(EventPage { items, next })
        })
        .await
    }
}

//! Stream images of this table's items to [`Change`]s: the one place that
//! knows which items are entities and how their images decode.

use time::OffsetDateTime;

use super::items::{Item, attr_s, category_from_item, order_from_item, product_from_item, user_from_item};
use crate::events::stream::StreamRecord;
use crate::events::{Actor, Change, Entity};
use crate::store::StoreError;

/// The change a stream record means, or `None` for an item no event is
/// about (email claims, tokens, idempotency and event-log records...).
pub fn change_of(record: &StreamRecord) -> Result<Option<Change>, StoreError> {
    let old = record.dynamodb.old_image.as_ref().map(entity_of).transpose()?.flatten();
    let new = record.dynamodb.new_image.as_ref().map(entity_of).transpose()?.flatten();
    if old.is_none() && new.is_none() {
        return Ok(None);
    }
    let at = record
        .dynamodb
        .approximate_creation
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    Ok(Some(Change { id: record.event_id.clone(), at, old, new }))
}

fn entity_of(item: &Item) -> Result<Option<Entity>, StoreError> {
    let Ok(kind) = attr_s(item, "entity") else {
        return Ok(None);
    };
    Ok(Some(match kind.as_str() {
        "user" => Entity::User(user_from_item(item)?),
        "category" => Entity::Category(category_from_item(item)?),
        "product" => Entity::Product(product_from_item(item)?),
        "order" => Entity::Order {
            order: order_from_item(item)?,
            changed_by: attr_s(item, "changedBy").ok().and_then(|stored| Actor::from_stored(&stored)),
        },
        _ => return Ok(None),
    }))
}

//! DynamoDB stream records to domain events: the input of the
//! `events-publish` function (Lambda's DynamoDB event, `NEW_AND_OLD_IMAGES`)
//! and, built from the Streams API, of `shop-local`'s stream poller. Both
//! go through [`changes_of`] and [`super::events_of`].

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::change::{Change, Mapping, events_of};
use super::envelope::Event;
use crate::store::StoreError;
use crate::store::dynamodb::stream::change_of;

/// An item image: attribute name to value.
pub type Image = HashMap<String, AttributeValue>;

/// A batch of stream records, as Lambda delivers it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

/// One stream record: one item written.
#[derive(Clone, Debug, Deserialize)]
pub struct StreamRecord {
    /// Unique per record and the same on every redelivery of it.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: StreamData,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct StreamData {
    /// Unix seconds (fractional in Lambda's events).
    #[serde(rename = "ApproximateCreationDateTime", default)]
    pub approximate_creation: Option<f64>,
    #[serde(rename = "NewImage", default, deserialize_with = "image")]
    pub new_image: Option<Image>,
    #[serde(rename = "OldImage", default, deserialize_with = "image")]
    pub old_image: Option<Image>,
    /// The record's position in its shard: what a batch failure names.
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: String,
}

fn image<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Image>, D::Error> {
    let raw: Option<serde_json::Map<String, Value>> = Option::deserialize(deserializer)?;
    raw.map(|map| {
        map.iter()
            .map(|(name, value)| attribute_from_json(value).map(|v| (name.clone(), v)))
            .collect::<Result<Image, String>>()
            .map_err(serde::de::Error::custom)
    })
    .transpose()
}

/// One attribute in DynamoDB's JSON form (`{"S": "..."}`, `{"N": "1"}`,
/// `{"M": {...}}` ...).
pub fn attribute_from_json(value: &Value) -> Result<AttributeValue, String> {
    let typed = value.as_object().filter(|o| o.len() == 1).ok_or("an attribute value is not a one-key object")?;
    let (tag, inner) = typed.iter().next().ok_or("empty attribute value")?;
    let text = |v: &Value| v.as_str().map(str::to_owned).ok_or_else(|| format!("`{tag}` holds no string"));
    let texts = |v: &Value| -> Result<Vec<String>, String> {
        v.as_array().ok_or_else(|| format!("`{tag}` holds no list"))?.iter().map(text).collect()
    };
    let blob = |v: &Value| -> Result<Blob, String> {
        let encoded = text(v)?;
        base64::engine::general_purpose::STANDARD.decode(encoded).map(Blob::new).map_err(|e| e.to_string())
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("`BOOL` holds no boolean")?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(texts(inner)?),
        "NS" => AttributeValue::Ns(texts(inner)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BS" => AttributeValue::Bs(
            inner.as_array().ok_or("`BS` holds no list")?.iter().map(blob).collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            inner.as_array().ok_or("`L` holds no list")?.iter().map(attribute_from_json).collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .ok_or("`M` holds no object")?
                .iter()
                .map(|(k, v)| attribute_from_json(v).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("unknown attribute type `{other}`")),
    })
}

/// The change each record means (`None` for records of items no event is
/// about: idempotency records, revoked tokens, the event log itself), in
/// the batch's order.
pub fn changes_of(event: &StreamEvent) -> Vec<(&StreamRecord, Result<Option<Change>, StoreError>)> {
    event.records.iter().map(|record| (record, change_of(record))).collect()
}

/// Where events go: the EventBridge bus in AWS.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Puts up to [`SINK_BATCH`] events; an error means some may not have
    /// arrived (the whole batch is retried; consumers are idempotent).
    async fn put(&self, events: &[Event]) -> Result<(), String>;
}

/// The most entries one EventBridge `PutEvents` call takes.
pub const SINK_BATCH: usize = 10;

/// Lambda's partial batch response (`ReportBatchItemFailures`): the
/// records from the first one named onwards are delivered again.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

/// What [`publish`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub events: usize,
    pub response: BatchResponse,
}

/// Maps a batch of stream records to events and puts them on `sink` in
/// order. On the first record that cannot be decoded or whose events did
/// not all arrive, stops and names that record, so Lambda retries from it
/// (bisecting on repeated failure, then the on-failure queue).
pub async fn publish(event: &StreamEvent, mapping: &Mapping, sink: &dyn EventSink) -> Published {
    let mut pending: Vec<(usize, Event)> = Vec::new();
    let mut undecodable: Option<usize> = None;
    for (index, (record, change)) in changes_of(event).into_iter().enumerate() {
        match change {
            Ok(Some(change)) => pending.extend(events_of(&change, mapping).into_iter().map(|e| (index, e))),
            Ok(None) => {}
            Err(err) => {
                tracing::error!(event_id = %record.event_id, error = %err, "a stream record cannot be decoded");
                undecodable = Some(index);
                break;
            }
        }
    }
    let mut published = 0;
    let mut failed_at = undecodable;
    for chunk in pending.chunks(SINK_BATCH) {
        let events: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
        if let Err(err) = sink.put(&events).await {
            tracing::error!(error = %err, "putting events on the bus failed");
            failed_at = Some(chunk[0].0);
            break;
        }
        published += events.len();
    }
    let batch_item_failures = failed_at
        .map(|index| ItemFailure { item_identifier: event.records[index].dynamodb.sequence_number.clone() })
        .into_iter()
        .collect();
    Published { events: published, response: BatchResponse { batch_item_failures } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_json_becomes_attribute_values() {
        let json: Value = serde_json::json!({"M": {"a": {"S": "x"}, "b": {"N": "1.5"}, "c": {"L": [{"BOOL": true}, {"NULL": true}]}, "d": {"SS": ["p", "q"]}, "e": {"B": "aGk="}}});
        let AttributeValue::M(map) = attribute_from_json(&json).unwrap() else { panic!("not a map") };
        assert_eq!(map["a"], AttributeValue::S("x".into()));
        assert_eq!(map["b"], AttributeValue::N("1.5".into()));
        assert_eq!(map["c"], AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]));
        assert_eq!(map["d"], AttributeValue::Ss(vec!["p".into(), "q".into()]));
        assert_eq!(map["e"], AttributeValue::B(Blob::new("hi")));
        for bad in [
            serde_json::json!({"S": 1}),
            serde_json::json!({"X": "1"}),
            serde_json::json!({"S": "a", "N": "1"}),
            serde_json::json!("S"),
        ] {
            assert!(attribute_from_json(&bad).is_err(), "{bad}");
        }
    }
}

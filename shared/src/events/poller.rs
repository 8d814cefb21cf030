//! Reads a DynamoDB (Local) table's stream through the Streams API, as
//! Lambda's event source mapping does in AWS, and hands each batch over as
//! the same [`StreamEvent`] the `events-publish` function receives.
//!
//! Where to resume is a per-shard checkpoint (the last sequence number
//! whose events reached every consumer), kept in a file, so a restarted
//! `shop-local` neither loses nor replays more than the changes in flight.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use serde::{Deserialize, Serialize};

use super::stream::{Image, StreamData, StreamEvent, StreamRecord};
use crate::config::Config;
use crate::store::StoreError;
use crate::store::dynamodb::DynamoStore;

/// Records read per shard per round.
const RECORDS_PER_CALL: i32 = 500;
/// How often the shard list is read again (besides when a shard ends):
/// DescribeStream is the expensive call, and shards change rarely.
const DISCOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Where each shard of one stream was left.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub stream_arn: String,
    /// Shard id -> the last sequence number fully delivered.
    pub shards: BTreeMap<String, String>,
}

struct Shard {
    /// `None` once the shard is closed and read to its end.
    iterator: Option<String>,
}

/// A reader of one table's stream.
pub struct StreamPoller {
    streams: StreamsClient,
    stream_arn: String,
    shards: HashMap<String, Shard>,
    resume_from: BTreeMap<String, String>,
    checkpoint_file: Option<PathBuf>,
    /// When the shard list was last read; `None` forces a read.
    discovered_at: Option<std::time::Instant>,
}

fn unavailable<E: std::error::Error>(err: E) -> StoreError {
    StoreError::Unavailable(format!("stream: {}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(err)))
}

impl StreamPoller {
    /// Opens the stream of `store`'s table, resuming from the checkpoint
    /// in `checkpoint_file` when it is of the same stream.
    pub async fn open(
        config: &Config,
        store: &DynamoStore,
        checkpoint_file: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        let described = store.client().describe_table().table_name(store.table()).send().await.map_err(unavailable)?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| StoreError::Internal(format!("table {} has no stream", store.table())))?
            .to_owned();
        let streams = StreamsClient::new(&crate::store::dynamodb::shared_config(config).await);
        let saved: Option<Checkpoint> = checkpoint_file
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let resume_from = saved.filter(|c| c.stream_arn == stream_arn).map(|c| c.shards).unwrap_or_default();
        Ok(StreamPoller {
            streams,
            stream_arn,
            shards: HashMap::new(),
            resume_from,
            checkpoint_file,
            discovered_at: None,
        })
    }

    /// Finds new shards and gets their iterators: after the checkpoint, or
    /// from the oldest record kept (the stream keeps 24 hours).
    async fn discover(&mut self) -> Result<(), StoreError> {
        if self.discovered_at.is_some_and(|at| at.elapsed() < DISCOVERY_INTERVAL) {
            return Ok(());
        }
        let described =
            self.streams.describe_stream().stream_arn(&self.stream_arn).send().await.map_err(unavailable)?;
        let shard_ids: Vec<String> = described
            .stream_description()
            .map(|d| d.shards().iter().filter_map(|s| s.shard_id().map(str::to_owned)).collect())
            .unwrap_or_default();
        for shard_id in shard_ids {
            if self.shards.contains_key(&shard_id) {
                continue;
            }
            let iterator = self.iterator(&shard_id).await?;
            self.shards.insert(shard_id, Shard { iterator });
        }
        self.discovered_at = Some(std::time::Instant::now());
        Ok(())
    }

    async fn iterator(&self, shard_id: &str) -> Result<Option<String>, StoreError> {
        let request = self.streams.get_shard_iterator().stream_arn(&self.stream_arn).shard_id(shard_id);
        let Some(sequence) = self.resume_from.get(shard_id) else {
            let oldest = request.shard_iterator_type(ShardIteratorType::TrimHorizon).send().await;
            return Ok(oldest.map_err(unavailable)?.shard_iterator);
        };
        let after =
            request.clone().shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence);
        match after.send().await {
            Ok(output) => Ok(output.shard_iterator),
            // The checkpoint is older than the stream keeps (24 hours):
            // what came between is gone; go on from the oldest kept.
            Err(err) if err.as_service_error().is_some_and(|e| e.is_trimmed_data_access_exception()) => {
                tracing::error!(
                    shard_id,
                    sequence,
                    "the stream no longer keeps the checkpoint's record; changes were lost"
                );
                let oldest = request.shard_iterator_type(ShardIteratorType::TrimHorizon).send().await;
                Ok(oldest.map_err(unavailable)?.shard_iterator)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    /// The records written since the last call, shard by shard, each
    /// tagged with its shard.
    pub async fn poll(&mut self) -> Result<Vec<(String, StreamEvent)>, StoreError> {
        self.discover().await?;
        let mut batches = Vec::new();
        let shard_ids: Vec<String> = self.shards.keys().cloned().collect();
        for shard_id in shard_ids {
            let Some(iterator) = self.shards[&shard_id].iterator.clone() else {
                continue;
            };
            let output = match self.streams.get_records().shard_iterator(iterator).limit(RECORDS_PER_CALL).send().await
            {
                Ok(output) => output,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_expired_iterator_exception() || e.is_trimmed_data_access_exception()) =>
                {
                    // An iterator idle for 15 minutes expires; one taken on
                    // an empty shard can point before what the shard now
                    // keeps (DynamoDB Local does this). Either way: start
                    // again after the last record read, or from the oldest.
                    let fresh = self.iterator(&shard_id).await?;
                    self.shards.insert(shard_id, Shard { iterator: fresh });
                    continue;
                }
                Err(err) => return Err(unavailable(err)),
            };
            let records: Vec<StreamRecord> = output.records().iter().filter_map(record_of).collect();
            if let Some(last) = records.last() {
                // A later iterator after an expiry starts past these.
                self.resume_from.insert(shard_id.clone(), last.dynamodb.sequence_number.clone());
            }
            if output.next_shard_iterator.is_none() {
                // The shard ended (split or rolled over): its children are new.
                self.discovered_at = None;
            }
            self.shards.insert(shard_id.clone(), Shard { iterator: output.next_shard_iterator });
            if !records.is_empty() {
                batches.push((shard_id, StreamEvent { records }));
            }
        }
        Ok(batches)
    }

    /// Saves `checkpoint` (per shard, the last sequence number whose
    /// events every consumer has).
    pub fn save(&self, shards: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let Some(path) = &self.checkpoint_file else {
            return Ok(());
        };
        let checkpoint = Checkpoint { stream_arn: self.stream_arn.clone(), shards: shards.clone() };
        let bytes = serde_json::to_vec_pretty(&checkpoint).map_err(|e| StoreError::Internal(e.to_string()))?;
        // Written aside and renamed: a crash never leaves half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| StoreError::Internal(format!("cannot save {}: {e}", path.display())))
    }

    /// The checkpoint this poller resumed from.
    pub fn resumed_from(&self) -> &BTreeMap<String, String> {
        &self.resume_from
    }
}

fn record_of(record: &aws_sdk_dynamodbstreams::types::Record) -> Option<StreamRecord> {
    let data = record.dynamodb()?;
    let creation = data.approximate_creation_date_time().map(|t| t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9);
    Some(StreamRecord {
        event_id: record.event_id()?.to_owned(),
        event_name: record.event_name().map(|n| n.as_str().to_owned()).unwrap_or_default(),
        dynamodb: StreamData {
            approximate_creation: creation,
            new_image: data.new_image().map(image_of),
            old_image: data.old_image().map(image_of),
            sequence_number: data.sequence_number()?.to_owned(),
        },
    })
}

fn image_of(image: &HashMap<String, StreamValue>) -> Image {
    image.iter().map(|(name, value)| (name.clone(), value_of(value))).collect()
}

/// The Streams API's attribute value as the table API's: same shape,
/// different crate.
fn value_of(value: &StreamValue) -> AttributeValue {
    use aws_sdk_dynamodb::primitives::Blob;
    match value {
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Null(n) => AttributeValue::Null(*n),
        StreamValue::Ss(list) => AttributeValue::Ss(list.clone()),
        StreamValue::Ns(list) => AttributeValue::Ns(list.clone()),
        StreamValue::B(blob) => AttributeValue::B(Blob::new(blob.as_ref())),
        StreamValue::Bs(list) => AttributeValue::Bs(list.iter().map(|b| Blob::new(b.as_ref())).collect()),
        StreamValue::L(list) => AttributeValue::L(list.iter().map(value_of).collect()),
        StreamValue::M(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), value_of(v))).collect()),
        // A type newer than this code: kept visible rather than dropped.
        _ => AttributeValue::Null(true),
    }
}

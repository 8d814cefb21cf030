//! The functions that are not routes: the asynchronous half in AWS. Like
//! [`crate::routes::ROUTES`] for the API, [`WORKERS`] is the one list the
//! template, the binaries and `events/` are held to.
//!
//! | function | trigger | does |
//! | --- | --- | --- |
//! | `events-publish` | the table's DynamoDB stream | maps each batch to domain events, puts them on the EventBridge bus |
//! | `search-index` | the table's DynamoDB stream (product items only) | keeps the search index: each batch's products' entries rewritten once |
//! | `events-record` | a bus rule (every event) | keeps the event in the admin event log |
//! | `events-invalidate-cache` | a bus rule (catalog events) | invalidates the cache scopes the change touched |
//! | `orders-expire` | a schedule (every minute) | moves unpaid reservations to `expired` |
//! | `payments-refund` | a bus rule (`order.cancelled`, `order.expired`) | refunds a paid order that will not ship, or cancels its open PaymentIntent |
//! | `webhooks-fanout` | a bus rule (every event) | one delivery job per matching subscription, onto the delivery queue |
//! | `webhooks-deliver` | the delivery queue (SQS) | attempts each job; retries go back on the queue with their delay, the last failure to the DLQ |

use serde::Deserialize;
use time::OffsetDateTime;

use crate::app::App;
use crate::events::consumers::{Consumer, ConsumerError};
use crate::events::dispatch::lag_of;
use crate::events::expiry::{self, Sweep};
use crate::events::stream::{BatchResponse, EventSink, ItemFailure, StreamEvent, publish};
use crate::events::{Event, EventType, Mapping};
use crate::metrics::{EventMetric, MetricsSink};
use crate::store::StoreError;
use crate::webhooks::queue::settle;
use crate::webhooks::{Deliverer, DeliveryQueue, Job};

/// What starts a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Batches of the table's stream records (an event source mapping).
    TableStream,
    /// Events on the stack's bus matching a rule; `None` is every type.
    Bus(Option<&'static [EventType]>),
    /// A schedule.
    Schedule,
    /// Messages of the webhook delivery queue (an SQS event source).
    Queue,
}

/// One function that is not a route.
#[derive(Debug, PartialEq, Eq)]
pub struct Worker {
    /// The Lambda function (and binary) name.
    pub function: &'static str,
    pub trigger: Trigger,
}

/// The catalog events whose cache scopes go stale: what the
/// cache-invalidation consumer's rule matches (`product.stock_low` comes
/// with the `product.updated` of the same change).
pub const CATALOG_EVENTS: &[EventType] =
    &[EventType::CategoryCreated, EventType::ProductCreated, EventType::ProductUpdated, EventType::ProductDeleted];

/// The events after which an order may owe Stripe something: what the
/// payment settlement's rule matches.
pub const CLOSED_ORDER_EVENTS: &[EventType] = &[EventType::OrderCancelled, EventType::OrderExpired];

pub static WORKERS: &[Worker] = &[
    Worker { function: "events-publish", trigger: Trigger::TableStream },
    Worker { function: "search-index", trigger: Trigger::TableStream },
    Worker { function: "events-record", trigger: Trigger::Bus(None) },
    Worker { function: "events-invalidate-cache", trigger: Trigger::Bus(Some(CATALOG_EVENTS)) },
    Worker { function: "orders-expire", trigger: Trigger::Schedule },
    Worker { function: "payments-refund", trigger: Trigger::Bus(Some(CLOSED_ORDER_EVENTS)) },
    Worker { function: "webhooks-fanout", trigger: Trigger::Bus(None) },
    Worker { function: "webhooks-deliver", trigger: Trigger::Queue },
];

pub fn by_function(name: &str) -> Option<&'static Worker> {
    WORKERS.iter().find(|worker| worker.function == name)
}

/// An EventBridge event as a rule's target receives it.
#[derive(Clone, Debug, Deserialize)]
pub struct BusEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    /// The domain event itself.
    pub detail: Event,
}

/// `events-publish`: one batch of stream records onto `sink`.
pub async fn publish_batch(
    batch: &StreamEvent,
    mapping: &Mapping,
    sink: &dyn EventSink,
    metrics: &MetricsSink,
) -> BatchResponse {
    let published = publish(batch, mapping, sink).await;
    if published.events > 0 {
        metrics.publish_event_metric("events-publish", EventMetric::EventsPublished, published.events as f64);
    }
    published.response
}

/// `search-index`: one batch of stream records into the search index, then,
/// if a product changed more than its stock, the listing cache scope
/// emptied: search pages cached while the entries still lagged the product
/// are dropped after the entries changed, whatever the order in which this
/// and the bus's cache-invalidation consumer run. A failure names the
/// batch's first record, so Lambda retries all of it (rewriting entries is
/// idempotent), splitting it if it keeps failing.
pub async fn index_batch(
    store: &crate::store::dynamodb::DynamoStore,
    listings: &crate::cache::generational::GenerationalCache,
    batch: &StreamEvent,
) -> BatchResponse {
    let outcome = match store.index_records(&batch.records).await {
        Ok(work) if work.listings_changed => listings
            .try_invalidate(crate::handlers::products::LIST_SCOPE)
            .await
            .map(|()| work)
            .map_err(|e| e.to_string()),
        Ok(work) => Ok(work),
        Err(err) => Err(err.to_string()),
    };
    match outcome {
        Ok(work) => {
            tracing::info!(puts = work.puts, deletes = work.deletes, "search index updated");
            BatchResponse::default()
        }
        Err(error) => {
            tracing::warn!(error, "search index update failed; the batch is retried");
            let first = batch.records.first().map(|record| record.dynamodb.sequence_number.clone());
            BatchResponse {
                batch_item_failures: first.into_iter().map(|item_identifier| ItemFailure { item_identifier }).collect(),
            }
        }
    }
}

/// A consumer function: one bus event to `consumer`. An error makes Lambda
/// retry the invocation, and EventBridge after it, then the DLQ.
pub async fn consume(consumer: &dyn Consumer, event: &BusEvent, metrics: &MetricsSink) -> Result<(), ConsumerError> {
    match consumer.consume(&event.detail).await {
        Ok(()) => {
            let lag = lag_of(&event.detail).as_secs_f64() * 1000.0;
            metrics.publish_event_metric(consumer.name(), EventMetric::DeliveryLag, lag);
            Ok(())
        }
        Err(err) => {
            tracing::warn!(consumer = consumer.name(), event_id = %event.detail.id, error = %err, "event delivery failed");
            metrics.publish_event_metric(consumer.name(), EventMetric::ConsumerFailures, 1.0);
            Err(err)
        }
    }
}

/// A batch of SQS messages as Lambda delivers it.
#[derive(Clone, Debug, Deserialize)]
pub struct QueueBatch {
    #[serde(rename = "Records")]
    pub records: Vec<QueueMessage>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
}

/// `webhooks-deliver`: every job of the batch, at once. Each job's next
/// step (a retry with its delay, the dead-letter queue) is queued before
/// its message is acknowledged; a job that could not run (the store or the
/// queue failed) is named in the answer, so SQS delivers it again after
/// its visibility timeout, and after five receives moves it to the DLQ.
/// An unreadable message is named too, and so ends in the DLQ.
pub async fn deliver_batch(deliverer: &Deliverer, queue: &dyn DeliveryQueue, batch: &QueueBatch) -> BatchResponse {
    let runs = batch.records.iter().map(|message| async move {
        let job: Job = match serde_json::from_str(&message.body) {
            Ok(job) => job,
            Err(err) => {
                tracing::error!(message_id = %message.message_id, error = %err, "unreadable webhook job");
                return Some(message.message_id.clone());
            }
        };
        let settled = match deliverer.run(job).await {
            Ok(next) => settle(queue, next).await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        settled.err().map(|err| {
            tracing::warn!(message_id = %message.message_id, error = %err, "webhook job could not run; SQS retries it");
            message.message_id.clone()
        })
    });
    let failed = futures::future::join_all(runs).await;
    BatchResponse {
        batch_item_failures: failed
            .into_iter()
            .flatten()
            .map(|item_identifier| ItemFailure { item_identifier })
            .collect(),
    }
}

/// Orders one scheduled run of `orders-expire` expires at most: a backlog
/// is worked off over several runs, each well within the timeout.
pub const EXPIRY_BATCH: usize = 500;

/// `orders-expire`: one sweep, unless expiry is off.
pub async fn expire(app: &App, now: OffsetDateTime) -> Result<Sweep, StoreError> {
    match app.config.order_reservation {
        Some(reservation) => expiry::sweep(app, now, reservation, EXPIRY_BATCH).await,
        None => Ok(Sweep::default()),
    }
}

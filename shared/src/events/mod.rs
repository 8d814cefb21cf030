//! The asynchronous half: domain events from the store's change feed, and
//! what consumes them.
//!
//! ```text
//! state change --(same atomic write)--> change record
//!   AWS:   DynamoDB Streams -> events-publish fn -> EventBridge bus -> rules -> consumer fns (+ DLQs)
//!   local: redb outbox | DynamoDB Local stream poller -> same mapping -> in-process consumers
//! ```
//!
//! - [`envelope`]: the event envelope and every type's `data`.
//! - [`change`]: the one mapping from a stored change to events.
//! - [`stream`]: DynamoDB stream records (the Lambda's input and the local
//!   poller's) to changes, and the publishing of a batch.
//! - [`consumers`]: the admin event log and the cache invalidation.
//! - [`dispatch`]: in-process delivery to the consumers, retried until each
//!   succeeds (the local stand-in for EventBridge's rules and retries).
//! - [`expiry`]: the reservation expiry (pending orders -> `expired`).
//! - [`local`]: all of it inside `shop-local`, fed by the embedded store's
//!   outbox or by [`poller`] reading DynamoDB Local's stream.
//!
//! Delivery is at least once; every consumer is idempotent by event id.

pub mod change;
pub mod consumers;
pub mod dispatch;
pub mod envelope;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
pub mod expiry;
pub mod local;
#[cfg(feature = "stream-poller")]
pub mod poller;
pub mod stream;

pub use change::{Change, Entity, Mapping, events_of};
pub use envelope::{Actor, Event, EventData, EventType, LOG_RETENTION, SCHEMA_VERSION};

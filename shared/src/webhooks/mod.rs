//! Webhooks: admins subscribe URLs to domain events; every matching event
//! is POSTed to them, signed per Standard Webhooks 1.0, retried on a
//! schedule of about a day, and every attempt is logged.
//!
//! ```text
//! domain event --> fan-out consumer --(one job per matching subscription)--> delivery queue
//!   delivery queue --> Deliverer::run: POST, record the attempt --> done | job again later | dead letter
//!   AWS:   bus rule -> webhooks-fanout fn -> SQS (delays) -> webhooks-deliver fn (+ DLQ)
//!   local: in-process consumer -> in-process timer queue -> the same Deliverer
//! ```
//!
//! - [`subscription`]: subscriptions, their event filters and secrets.
//! - [`signing`]: the `webhook-signature` header.
//! - [`target`]: which URLs may be called (SSRF rules), checked when a
//!   subscription is made and again, on the resolved addresses, at every
//!   delivery.
//! - [`delivery`]: jobs, the retry schedule, one attempt and its log entry.
//! - [`queue`]: the fan-out consumer and the in-process queue; `sqs` the
//!   queue in AWS.
//!
//! At least once, in no promised order: a receiver dedupes by
//! `webhook-id` (the event id, the same on every retry).

pub mod delivery;
pub mod queue;
pub mod signing;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod subscription;
pub mod target;

pub use delivery::{AttemptState, Deliverer, DeliveryAttempt, Job, Next, RetrySchedule, attempts_by_state};
pub use queue::{DeliveryQueue, FanOut, LocalQueue, QueueError};
pub use subscription::{EventFilter, Webhook, WebhookSecret};
pub use target::{Network, TargetPolicy};

/// Subscriptions a deployment keeps at most: every event is matched
/// against all of them.
pub const MAX_WEBHOOKS: usize = 25;
/// How long a receiver may take to answer an attempt.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the secret a rotation replaced keeps signing beside the new one.
pub const SECRET_OVERLAP: time::Duration = time::Duration::hours(24);
/// How long delivery attempts stay in the log.
pub const DELIVERY_LOG_RETENTION: time::Duration = time::Duration::days(30);

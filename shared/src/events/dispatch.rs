//! In-process delivery of domain events to the consumers: the local
//! stand-in for the EventBridge bus, its rules and their retries.
//!
//! Each consumer has its own queue and task, so a consumer that is failing
//! (the cache invalidation while the cache is down) neither blocks nor
//! delays the others. A failed delivery is retried with capped, jittered
//! backoff until it succeeds. A change is *done* once every event it meant
//! reached every consumer; only then does its source acknowledge it (the
//! outbox entry deleted, the stream checkpoint moved), so a crash before
//! that redelivers it: at least once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::consumers::{Consumer, ConsumerError};
use super::envelope::Event;
use crate::metrics::{EventMetric, MetricsSink};

/// The first retry's delay; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two attempts: also the longest a consumer
/// stays behind a dependency that has come back.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Sees every delivery's outcome.
pub trait DeliveryObserver: Send + Sync {
    /// `count` events were mapped from the change feed and handed over.
    fn published(&self, _count: usize) {}
    /// One read of the change feed completed (whatever it found).
    fn feed_read(&self) {}
    fn delivered(&self, consumer: &str, event: &Event, lag: Duration);
    fn failed(&self, consumer: &str, event: &Event, error: &ConsumerError, attempt: u32);
}

/// Logs failures and publishes the event metrics (EMF when configured).
pub struct MetricsObserver {
    pub sink: MetricsSink,
}

impl DeliveryObserver for MetricsObserver {
    fn published(&self, count: usize) {
        if count > 0 {
            self.sink.publish_event_metric("events-publish", EventMetric::EventsPublished, count as f64);
        }
    }

    fn delivered(&self, consumer: &str, _event: &Event, lag: Duration) {
        self.sink.publish_event_metric(consumer, EventMetric::DeliveryLag, lag.as_secs_f64() * 1000.0);
    }

    fn failed(&self, consumer: &str, event: &Event, error: &ConsumerError, attempt: u32) {
        // The first failures of an outage are worth a warning; the retries
        // after them are not worth a line each.
        if attempt <= 3 || attempt.is_power_of_two() {
            tracing::warn!(consumer, event_id = %event.id, event_type = %event.event_type(), attempt, %error, "event delivery failed; retrying");
        }
        self.sink.publish_event_metric(consumer, EventMetric::ConsumerFailures, 1.0);
    }
}

/// The time from a change to now: what [`DeliveryObserver::delivered`]
/// reports as lag.
pub fn lag_of(event: &Event) -> Duration {
    let lag = OffsetDateTime::now_utc() - event.occurred_at;
    Duration::try_from(lag).unwrap_or(Duration::ZERO)
}

struct Delivery {
    position: u64,
    event: Arc<Event>,
}

/// Hands changes' events to every consumer and tells which changes are done.
pub struct Dispatcher {
    queues: Vec<mpsc::UnboundedSender<Delivery>>,
    /// Per submitted change: deliveries still to succeed.
    outstanding: Arc<Mutex<HashMap<u64, usize>>>,
    done: Arc<Mutex<Vec<u64>>>,
    /// Wakes the source when a change is done.
    progress: Arc<tokio::sync::Notify>,
}

impl Dispatcher {
    /// Starts one delivery task per consumer (on the current runtime).
    pub fn start(consumers: Vec<Arc<dyn Consumer>>, observer: Arc<dyn DeliveryObserver>) -> Self {
        let outstanding: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
        let done: Arc<Mutex<Vec<u64>>> = Arc::default();
        let progress = Arc::new(tokio::sync::Notify::new());
        let queues = consumers
            .into_iter()
            .map(|consumer| {
                let (sender, receiver) = mpsc::unbounded_channel();
                let finished = Finished {
                    outstanding: Arc::clone(&outstanding),
                    done: Arc::clone(&done),
                    progress: Arc::clone(&progress),
                };
                tokio::spawn(deliver_all(consumer, receiver, Arc::clone(&observer), finished));
                sender
            })
            .collect();
        Dispatcher { queues, outstanding, done, progress }
    }

    /// Queues the events of the change at `position` (a number the source
    /// chose, unique among its changes in flight) for every consumer.
    pub fn submit(&self, position: u64, events: Vec<Event>) {
        let deliveries = events.len() * self.queues.len();
        if deliveries == 0 {
            self.done.lock().expect("dispatch lock").push(position);
            return;
        }
        self.outstanding.lock().expect("dispatch lock").insert(position, deliveries);
        for event in events {
            let event = Arc::new(event);
            for queue in &self.queues {
                // A closed queue means the runtime is shutting down; the
                // change stays unacknowledged and is redelivered at restart.
                let _ = queue.send(Delivery { position, event: Arc::clone(&event) });
            }
        }
    }

    /// The positions done since the last call.
    pub fn take_done(&self) -> Vec<u64> {
        std::mem::take(&mut *self.done.lock().expect("dispatch lock"))
    }

    /// Changes submitted and not yet done.
    pub fn in_flight(&self) -> usize {
        self.outstanding.lock().expect("dispatch lock").len()
    }

    /// Resolves when some change is done (or at once if one already is).
    pub async fn progressed(&self) {
        self.progress.notified().await;
    }
}

struct Finished {
    outstanding: Arc<Mutex<HashMap<u64, usize>>>,
    done: Arc<Mutex<Vec<u64>>>,
    progress: Arc<tokio::sync::Notify>,
}

impl Finished {
    fn one(&self, position: u64) {
        let mut outstanding = self.outstanding.lock().expect("dispatch lock");
        let Some(left) = outstanding.get_mut(&position) else {
            return;
        };
        *left -= 1;
        if *left == 0 {
            outstanding.remove(&position);
            self.done.lock().expect("dispatch lock").push(position);
            self.progress.notify_one();
        }
    }
}

async fn deliver_all(
    consumer: Arc<dyn Consumer>,
    mut queue: mpsc::UnboundedReceiver<Delivery>,
    observer: Arc<dyn DeliveryObserver>,
    finished: Finished,
) {
    while let Some(delivery) = queue.recv().await {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match consumer.consume(&delivery.event).await {
                Ok(()) => {
                    observer.delivered(consumer.name(), &delivery.event, lag_of(&delivery.event));
                    break;
                }
                Err(error) => {
                    observer.failed(consumer.name(), &delivery.event, &error, attempt);
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        finished.one(delivery.position);
    }
}

/// 50 ms, 100 ms, 200 ms ... capped at 1 s, each with up to 20 % jitter so
/// that consumers failing together do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(10)).min(MAX_BACKOFF);
    base + base.mul_f64(rand::rng().random_range(0.0..0.2))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::events::envelope::{EventData, SCHEMA_VERSION, StockLow};

    struct Flaky {
        failures_left: AtomicU32,
        seen: Mutex<Vec<uuid::Uuid>>,
    }

    #[async_trait]
    impl Consumer for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn consume(&self, event: &Event) -> Result<(), ConsumerError> {
            if self.failures_left.load(Ordering::SeqCst) > 0 {
                self.failures_left.fetch_sub(1, Ordering::SeqCst);
                return Err(ConsumerError("down".into()));
            }
            self.seen.lock().unwrap().push(event.id);
            Ok(())
        }
    }

    struct Quiet;
    impl DeliveryObserver for Quiet {
        fn delivered(&self, _: &str, _: &Event, _: Duration) {}
        fn failed(&self, _: &str, _: &Event, _: &ConsumerError, _: u32) {}
    }

    fn event(n: u128) -> Event {
        Event {
            id: uuid::Uuid::from_u128(n),
            schema_version: SCHEMA_VERSION,
            occurred_at: OffsetDateTime::now_utc(),
            data: EventData::ProductStockLow(StockLow {
                product_id: crate::domain::ProductId(uuid::Uuid::from_u128(n)),
                name: "Mug".into(),
                stock: 1,
                threshold: 5,
            }),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert!(backoff(1) >= FIRST_BACKOFF && backoff(1) < FIRST_BACKOFF * 2);
        assert!(backoff(2) >= FIRST_BACKOFF * 2);
        assert!(backoff(30) >= MAX_BACKOFF && backoff(30) <= MAX_BACKOFF.mul_f64(1.2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_consumer_is_retried_and_the_change_is_done_only_after_it_succeeds() {
        let flaky = Arc::new(Flaky { failures_left: AtomicU32::new(3), seen: Mutex::default() });
        let steady = Arc::new(Flaky { failures_left: AtomicU32::new(0), seen: Mutex::default() });
        let dispatcher = Dispatcher::start(vec![flaky.clone(), steady.clone()], Arc::new(Quiet));
        dispatcher.submit(1, vec![event(1), event(2)]);
        dispatcher.submit(2, Vec::new());
        assert_eq!(dispatcher.take_done(), [2], "a change that meant nothing is done at once");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(steady.seen.lock().unwrap().len(), 2, "the healthy consumer is not held back");
        assert!(dispatcher.take_done().is_empty());
        assert_eq!(dispatcher.in_flight(), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(dispatcher.take_done(), [1]);
        assert_eq!(*flaky.seen.lock().unwrap(), [uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)], "in order");
        assert_eq!(dispatcher.in_flight(), 0);
    }
}

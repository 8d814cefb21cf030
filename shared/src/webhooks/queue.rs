//! From events to attempts: the fan-out consumer makes one job per
//! matching subscription and hands it to a [`DeliveryQueue`], which has
//! [`Deliverer::run`] attempt it when due and acts on what it says.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::delivery::{Deliverer, Job, Next};
use crate::events::Event;
use crate::events::consumers::{Consumer, ConsumerError};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
#[error("delivery queue: {0}")]
pub struct QueueError(pub String);

/// Where jobs wait until they are due.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Has each job attempted at its `not_before` (a queue that cannot
    /// wait that long may hand it back early).
    async fn enqueue(&self, jobs: Vec<Job>) -> Result<(), QueueError>;

    /// Keeps a job whose last attempt failed, for an operator to look at
    /// or replay (AWS: the dead-letter queue).
    async fn dead_letter(&self, job: Job) -> Result<(), QueueError>;
}

/// Acts on what [`Deliverer::run`] said of a job.
pub async fn settle(queue: &dyn DeliveryQueue, next: Next) -> Result<(), QueueError> {
    match next {
        Next::Done => Ok(()),
        Next::Later(job) => queue.enqueue(vec![job]).await,
        Next::DeadLetter(job) => queue.dead_letter(job).await,
    }
}

/// The webhook consumer of domain events: one job per subscription whose
/// filter matches.
pub struct FanOut {
    store: Arc<dyn Store>,
    queue: Arc<dyn DeliveryQueue>,
}

impl FanOut {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn DeliveryQueue>) -> Self {
        FanOut { store, queue }
    }
}

#[async_trait]
impl Consumer for FanOut {
    fn name(&self) -> &'static str {
        "webhooks-fanout"
    }

    async fn consume(&self, event: &Event) -> Result<(), ConsumerError> {
        let webhooks = self.store.webhooks().await.map_err(|e| ConsumerError(e.to_string()))?;
        let now = OffsetDateTime::now_utc();
        let jobs: Vec<Job> = webhooks
            .into_iter()
            .filter(|webhook| webhook.events.matches(event.event_type()))
            .map(|webhook| Job::first(webhook.id, event.clone(), now))
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        self.queue.enqueue(jobs).await.map_err(|e| ConsumerError(e.to_string()))
    }
}

/// Attempts made at once at most by one process, so a burst of events to
/// slow receivers cannot open thousands of connections.
const LOCAL_CONCURRENCY: usize = 32;
/// How long a job waits after the store failed it, doubling to a minute.
const STORE_RETRY_FIRST: Duration = Duration::from_millis(200);
const STORE_RETRY_MAX: Duration = Duration::from_secs(60);

/// `shop-local`'s queue: one task per job, sleeping until it is due, then
/// [`Deliverer::run`] as in AWS. Jobs live in memory: retries still
/// pending when the process stops are not made after it restarts (the
/// deliveries log shows them `retrying`); in AWS they wait in SQS.
pub struct LocalQueue {
    deliverer: Arc<Deliverer>,
    permits: Arc<Semaphore>,
}

impl LocalQueue {
    pub fn new(deliverer: Deliverer) -> Arc<Self> {
        Arc::new(LocalQueue { deliverer: Arc::new(deliverer), permits: Arc::new(Semaphore::new(LOCAL_CONCURRENCY)) })
    }

    async fn run_job(deliverer: Arc<Deliverer>, permits: Arc<Semaphore>, mut job: Job) {
        let mut store_retry = STORE_RETRY_FIRST;
        loop {
            let wait = job.not_before - OffsetDateTime::now_utc();
            if wait.is_positive() {
                tokio::time::sleep(wait.unsigned_abs()).await;
            }
            let outcome = {
                let Ok(_permit) = permits.acquire().await else { return };
                deliverer.run(job.clone()).await
            };
            match outcome {
                Ok(Next::Done) => return,
                Ok(Next::Later(next)) => {
                    job = next;
                    store_retry = STORE_RETRY_FIRST;
                }
                Ok(Next::DeadLetter(job)) => return log_dead_letter(&job),
                Err(err) => {
                    tracing::warn!(webhook_id = %job.webhook_id, error = %err, "webhook job could not run; retrying");
                    tokio::time::sleep(store_retry).await;
                    store_retry = (store_retry * 2).min(STORE_RETRY_MAX);
                }
            }
        }
    }
}

#[async_trait]
impl DeliveryQueue for LocalQueue {
    async fn enqueue(&self, jobs: Vec<Job>) -> Result<(), QueueError> {
        for job in jobs {
            tokio::spawn(Self::run_job(Arc::clone(&self.deliverer), Arc::clone(&self.permits), job));
        }
        Ok(())
    }

    async fn dead_letter(&self, job: Job) -> Result<(), QueueError> {
        log_dead_letter(&job);
        Ok(())
    }
}

fn log_dead_letter(job: &Job) {
    tracing::warn!(webhook_id = %job.webhook_id, event_id = %job.event.id, attempts = job.attempt, "webhook delivery failed for good");
}

//! The delivery queue in AWS: an SQS queue whose messages are jobs, each
//! sent with the delay until it is due (SQS delays at most 15 minutes: a
//! job due later comes back early and is sent again with what is left),
//! and a dead-letter queue for jobs whose last attempt failed.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::BehaviorVersion;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use time::OffsetDateTime;

use super::delivery::Job;
use super::queue::{DeliveryQueue, QueueError};
use crate::store::dynamodb::{https_client, lambda_environment};

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: i64 = 900;
/// SQS's largest batch.
const BATCH: usize = 10;

pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    /// The queues of `WEBHOOK_QUEUE_URL` and `WEBHOOK_DEAD_LETTER_QUEUE_URL`,
    /// with Lambda's region and credentials (`AWS_ENDPOINT_URL_SQS`
    /// overrides the endpoint).
    pub fn from_env() -> Result<Self, String> {
        let variable =
            |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(format!("{name} is not set"));
        let (region, credentials) = lambda_environment();
        let mut config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client())
            .region(region)
            .credentials_provider(credentials);
        config.set_endpoint_url(crate::store::dynamodb::endpoint_url("AWS_ENDPOINT_URL_SQS"));
        Ok(SqsQueue {
            client: Client::from_conf(config.build()),
            queue_url: variable("WEBHOOK_QUEUE_URL")?,
            dead_letter_url: variable("WEBHOOK_DEAD_LETTER_QUEUE_URL")?,
        })
    }
}

/// The message delay of a job due at `not_before`.
fn delay_seconds(not_before: OffsetDateTime, now: OffsetDateTime) -> i32 {
    let seconds = (not_before - now).whole_seconds().clamp(0, MAX_DELAY_SECONDS);
    i32::try_from(seconds).unwrap_or(0)
}

#[async_trait]
impl DeliveryQueue for SqsQueue {
    async fn enqueue(&self, jobs: Vec<Job>) -> Result<(), QueueError> {
        let now = OffsetDateTime::now_utc();
        for chunk in jobs.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (index, job) in chunk.iter().enumerate() {
                let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body)
                    .delay_seconds(delay_seconds(job.not_before, now))
                    .build()
                    .map_err(|e| QueueError(e.to_string()))?;
                entries.push(entry);
            }
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError(format!("{e:?}")))?;
            if !output.failed().is_empty() {
                let codes: Vec<&str> = output.failed().iter().map(|f| f.code()).collect();
                return Err(QueueError(format!(
                    "{} of {} jobs refused: {}",
                    codes.len(),
                    chunk.len(),
                    codes.join(", ")
                )));
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, job: Job) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(format!("{e:?}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_due_later_than_sqs_can_wait_is_sent_with_the_longest_delay() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(delay_seconds(now - time::Duration::seconds(3), now), 0);
        assert_eq!(delay_seconds(now + time::Duration::seconds(60), now), 60);
        assert_eq!(delay_seconds(now + time::Duration::hours(6), now), 900);
    }
}

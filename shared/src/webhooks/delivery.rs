//! One delivery attempt: the job (a subscription, an event, which attempt
//! this is), the signed POST, the log entry, and what comes next by the
//! retry schedule. [`Deliverer::run`] is the same code in AWS (fed by SQS)
//! and in `shop-local` (fed by [`super::LocalQueue`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DELIVERY_TIMEOUT;
use super::signing::signature_header;
use super::subscription::Webhook;
use super::target::{PublicOnlyResolver, TargetPolicy};
use crate::events::Event;
use crate::store::{Store, StoreError};

/// The delays between attempts: attempt 1 at once, attempt `n + 1` the
/// `n`-th delay (jittered by up to 10 % either way) after attempt `n`
/// failed; after the last, the delivery has failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// 5 s, 1 min, 10 min, 1 h, 6 h, 12 h: seven attempts over about 19 h.
    pub const DEFAULT: &'static str = "5,60,600,3600,21600,43200";
    /// The longest single delay: SQS keeps a message 14 days, and a day
    /// is what the schedule is meant to span.
    const MAX_DELAY_SECONDS: u64 = 86_400;
    const MAX_RETRIES: usize = 20;

    /// `WEBHOOK_RETRY_SCHEDULE_SECONDS`: comma-separated seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut delays = Vec::new();
        for part in text.split(',') {
            let seconds: u64 =
                part.trim().parse().ok().filter(|s| (1..=Self::MAX_DELAY_SECONDS).contains(s)).ok_or_else(|| {
                    format!("`{}` is not a whole number of seconds from 1 to {}", part.trim(), Self::MAX_DELAY_SECONDS)
                })?;
            delays.push(Duration::from_secs(seconds));
        }
        if delays.len() > Self::MAX_RETRIES {
            return Err(format!("at most {} retries", Self::MAX_RETRIES));
        }
        Ok(RetrySchedule(delays))
    }

    /// Attempts a delivery gets in all.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The delay before the attempt after `attempt` (1-based), unjittered;
    /// `None` when `attempt` was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        self.0.get(usize::try_from(attempt).ok()?.checked_sub(1)?).copied()
    }

    /// [`Self::delay_after`] with jitter, so receivers that failed together
    /// are not all retried in the same second.
    pub fn jittered_delay_after(&self, attempt: u32) -> Option<Duration> {
        self.delay_after(attempt).map(|delay| delay.mul_f64(rand::rng().random_range(0.9..1.1)))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::parse(Self::DEFAULT).expect("the default schedule parses")
    }
}

/// One delivery to make: the queue message in AWS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub webhook_id: Uuid,
    pub event: Event,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Not to be attempted earlier (a queue that cannot delay that long
    /// hands the job back early; [`Deliverer::run`] puts it back).
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
}

impl Job {
    pub fn first(webhook_id: Uuid, event: Event, now: OffsetDateTime) -> Self {
        Job { webhook_id, event, attempt: 1, not_before: now }
    }
}

/// Where a delivery stands after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptState {
    /// A 2xx within the timeout.
    Delivered,
    /// Failed; another attempt is scheduled at `nextRetryAt`.
    Retrying,
    /// The last attempt failed: no more (AWS keeps the job in a DLQ).
    Failed,
}

/// Attempts made by this process so far, by the state each left its
/// delivery in: what `shop-local`'s /metrics shows.
static ATTEMPTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

impl AttemptState {
    pub const ALL: [AttemptState; 3] = [AttemptState::Delivered, AttemptState::Retrying, AttemptState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Delivered => "delivered",
            AttemptState::Retrying => "retrying",
            AttemptState::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        match self {
            AttemptState::Delivered => 0,
            AttemptState::Retrying => 1,
            AttemptState::Failed => 2,
        }
    }
}

/// How many attempts of this process left their delivery in each state.
pub fn attempts_by_state() -> [(AttemptState, u64); 3] {
    AttemptState::ALL.map(|state| (state, ATTEMPTS[state.index()].load(Ordering::Relaxed)))
}

/// One attempt, as logged and as `GET /api/webhooks/{id}/deliveries` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// UUID v7: the log position, newest last.
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why there is no status (refused address, connection, timeout).
    pub error: Option<String>,
    pub latency_ms: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_at: Option<OffsetDateTime>,
    pub state: AttemptState,
}

/// What to do with a job after [`Deliverer::run`].
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Delivered, or its subscription is gone: nothing more.
    Done,
    /// Attempt this job at its `not_before` (a retry, or a job that came
    /// back before it was due).
    Later(Job),
    /// The last attempt failed: keep the job for an operator.
    DeadLetter(Job),
}

/// What the receiver said.
struct Answer {
    status: Option<u16>,
    error: Option<String>,
    latency: Duration,
}

impl Answer {
    fn delivered(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// Makes attempts and logs them.
pub struct Deliverer {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    schedule: RetrySchedule,
    policy: TargetPolicy,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, schedule: RetrySchedule, policy: TargetPolicy) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            // A redirect could lead anywhere, a private address included:
            // a 3xx is an answer like any other non-2xx.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, past the check below.
            .no_proxy()
            .dns_resolver(PublicOnlyResolver::shared(policy))
            .connect_timeout(Duration::from_secs(5))
            .timeout(DELIVERY_TIMEOUT)
            .user_agent(concat!("shop-api-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Deliverer { store, client, schedule, policy })
    }

    pub fn from_app(app: &crate::App) -> Result<Self, String> {
        Self::new(Arc::clone(&app.store), app.config.webhook_retry_schedule.clone(), app.config.webhook_target_policy())
    }

    /// Attempts `job` if it is due, logs the attempt, and says what comes
    /// next. A store failure is an error: the job itself is retried by
    /// its queue (it may then be POSTed again: at least once).
    pub async fn run(&self, job: Job) -> Result<Next, StoreError> {
        let now = OffsetDateTime::now_utc();
        if job.not_before > now {
            return Ok(Next::Later(job));
        }
        let Some(webhook) = self.store.webhook(job.webhook_id).await? else {
            // Unsubscribed: deliveries stop, retries included.
            return Ok(Next::Done);
        };
        let answer = self.post(&webhook, &job.event, now).await;
        let delay = if answer.delivered() { None } else { self.schedule.jittered_delay_after(job.attempt) };
        let next_retry_at = delay.map(|delay| now + delay);
        let state = match (answer.delivered(), next_retry_at) {
            (true, _) => AttemptState::Delivered,
            (false, Some(_)) => AttemptState::Retrying,
            (false, None) => AttemptState::Failed,
        };
        let attempt = DeliveryAttempt {
            id: Uuid::now_v7(),
            webhook_id: webhook.id,
            event_id: job.event.id,
            event_type: job.event.event_type().as_str().to_owned(),
            attempt: job.attempt,
            attempted_at: now,
            status: answer.status,
            error: answer.error,
            latency_ms: u64::try_from(answer.latency.as_millis()).unwrap_or(u64::MAX),
            next_retry_at,
            state,
        };
        self.store.record_delivery(&attempt).await?;
        ATTEMPTS[state.index()].fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            webhook_id = %webhook.id, event_id = %job.event.id, attempt = job.attempt, status = ?attempt.status,
            error = attempt.error.as_deref(), latency_ms = attempt.latency_ms, state = ?state, "webhook attempt"
        );
        Ok(match (state, next_retry_at) {
            (AttemptState::Delivered, _) => Next::Done,
            (AttemptState::Retrying, Some(at)) => Next::Later(Job { attempt: job.attempt + 1, not_before: at, ..job }),
            _ => Next::DeadLetter(job),
        })
    }

    /// One signed POST of `event` to `webhook`'s URL.
    async fn post(&self, webhook: &Webhook, event: &Event, now: OffsetDateTime) -> Answer {
        let started = Instant::now();
        let refused =
            |why: String| Answer { status: None, error: Some(format!("refused: {why}")), latency: started.elapsed() };
        // Checked again: the policy may be stricter now than when the
        // subscription was made, and an address literal meets no resolver.
        let url = match self.policy.check_url(&webhook.url) {
            Ok(url) => url,
            Err(why) => return refused(format!("the URL {why}")),
        };
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => return refused(e.to_string()),
        };
        let (id, timestamp) = (event.id.to_string(), now.unix_timestamp());
        let signature = signature_header(&webhook.signing_secrets(now), &id, timestamp, &body);
        let request = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        match request.send().await {
            Ok(response) => {
                Answer { status: Some(response.status().as_u16()), error: None, latency: started.elapsed() }
            }
            Err(err) => Answer { status: None, error: Some(describe(&err)), latency: started.elapsed() },
        }
    }
}

/// A transport error in one line: what failed and its innermost cause
/// (a refused address, a reset connection, a timeout).
fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        format!("timed out after {} s", DELIVERY_TIMEOUT.as_secs())
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let mut line = format!("{what}: {cause}");
    line.truncate(line.floor_char_boundary(300));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_a_day_in_seven_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 7);
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.delay_after(6), Some(Duration::from_secs(43_200)));
        assert_eq!(schedule.delay_after(7), None);
        assert_eq!(schedule.delay_after(0), None);
        let total: u64 = (1..7).map(|n| schedule.delay_after(n).unwrap().as_secs()).sum();
        assert!((18 * 3600..=24 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        let schedule = RetrySchedule::parse("100").unwrap();
        for _ in 0..200 {
            let delay = schedule.jittered_delay_after(1).unwrap();
            assert!(delay >= Duration::from_secs(90) && delay < Duration::from_secs(110), "{delay:?}");
        }
    }

    #[test]
    fn a_bad_schedule_names_the_bad_part() {
        assert_eq!(RetrySchedule::parse(" 1, 2 ,3").unwrap().attempts(), 4);
        assert!(RetrySchedule::parse("5,soon").unwrap_err().contains("soon"));
        assert!(RetrySchedule::parse("0").is_err());
        assert!(RetrySchedule::parse("").is_err());
        assert!(RetrySchedule::parse("90000").is_err());
        assert!(RetrySchedule::parse(&vec!["1"; 21].join(",")).is_err());
    }
}

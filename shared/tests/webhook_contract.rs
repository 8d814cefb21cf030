//! The webhook store's contract on both stores (subscriptions, the cap
//! under concurrent creates, secret rotation, the delivery log), and the
//! deliverer on both: signed POSTs to a receiver on loopback, retries by
//! the schedule, the last failure dead-lettered, nothing after an
//! unsubscribe.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shop::events::envelope::{CategoryCreated, EventData};
use shop::events::{Event, SCHEMA_VERSION};
use shop::store::{Store, StoreError};
use shop::webhooks::signing::sign;
use shop::webhooks::{
    AttemptState, Deliverer, DeliveryAttempt, EventFilter, Job, Next, RetrySchedule, TargetPolicy, Webhook,
    WebhookSecret,
};
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

fn webhook(url: &str) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        url: url.to_owned(),
        events: EventFilter::All,
        description: "contract".into(),
        created_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        secret: WebhookSecret::generate(),
        previous_secret: None,
    }
}

fn attempt(webhook: Uuid, number: u32) -> DeliveryAttempt {
    DeliveryAttempt {
        id: Uuid::now_v7(),
        webhook_id: webhook,
        event_id: Uuid::new_v4(),
        event_type: "order.placed".into(),
        attempt: number,
        attempted_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        status: Some(500),
        error: None,
        latency_ms: 3,
        next_retry_at: None,
        state: AttemptState::Failed,
    }
}

fn event() -> Event {
    Event {
        id: Uuid::new_v4(),
        schema_version: SCHEMA_VERSION,
        occurred_at: OffsetDateTime::now_utc(),
        data: EventData::CategoryCreated(CategoryCreated {
            category_id: Uuid::now_v7(),
            name: "Garden".into(),
            description: String::new(),
        }),
    }
}

async fn subscriptions_are_kept_listed_newest_first_and_deleted(store: Arc<dyn Store>) {
    let (first, second) = (webhook("https://a.example.com/hook"), webhook("https://b.example.com/hook"));
    store.create_webhook(&first, 25).await.unwrap();
    store.create_webhook(&second, 25).await.unwrap();
    assert_eq!(store.webhook(first.id).await.unwrap().as_ref(), Some(&first));
    let ids: Vec<Uuid> = store.webhooks().await.unwrap().iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![second.id, first.id]);
    store.delete_webhook(first.id).await.unwrap();
    assert!(store.webhook(first.id).await.unwrap().is_none());
    assert!(matches!(store.delete_webhook(first.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.webhooks().await.unwrap().len(), 1);
}

async fn the_cap_holds_under_concurrent_creates_and_frees_on_delete(store: Arc<dyn Store>) {
    let creates = (0..8).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let candidate = webhook(&format!("https://h{i}.example.com/hook"));
            store.create_webhook(&candidate, 3).await.map(|()| candidate.id)
        })
    });
    let results: Vec<_> = futures::future::join_all(creates).await.into_iter().map(|r| r.unwrap()).collect();
    let made: Vec<Uuid> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(made.len(), 3, "{results:?}");
    for result in &results {
        // A transaction conflict may also refuse one; never a fourth.
        assert!(
            matches!(result, Ok(_) | Err(StoreError::LimitReached(3)) | Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert_eq!(store.webhooks().await.unwrap().len(), 3);
    assert!(matches!(
        store.create_webhook(&webhook("https://late.example.com/"), 3).await,
        Err(StoreError::LimitReached(3))
    ));
    store.delete_webhook(made[0]).await.unwrap();
    store.create_webhook(&webhook("https://late.example.com/"), 3).await.unwrap();
}

async fn a_rotation_keeps_the_replaced_secret_until_its_overlap_ends(store: Arc<dyn Store>) {
    let original = webhook("https://a.example.com/hook");
    store.create_webhook(&original, 25).await.unwrap();
    let until = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::hours(24);
    let (one, two) = (WebhookSecret::generate(), WebhookSecret::generate());
    let rotated = store.rotate_webhook_secret(original.id, &one, until).await.unwrap();
    assert_eq!(rotated.secret, one);
    assert_eq!(rotated.previous_secret.as_ref().map(|p| (&p.secret, p.until)), Some((&original.secret, until)));
    let again = store.rotate_webhook_secret(original.id, &two, until).await.unwrap();
    assert_eq!(again.previous_secret.unwrap().secret, one, "the secret a rotation replaced is the one before it");
    assert_eq!(store.webhook(original.id).await.unwrap().unwrap().secret, two);
    assert!(matches!(store.rotate_webhook_secret(Uuid::now_v7(), &one, until).await, Err(StoreError::NotFound)));
}

async fn the_delivery_log_pages_newest_first_per_subscription(store: Arc<dyn Store>) {
    let (a, b) = (webhook("https://a.example.com/hook"), webhook("https://b.example.com/hook"));
    store.create_webhook(&a, 25).await.unwrap();
    store.create_webhook(&b, 25).await.unwrap();
    let mut logged = Vec::new();
    for number in 1..=5 {
        let entry = attempt(a.id, number);
        store.record_delivery(&entry).await.unwrap();
        logged.push(entry);
        store.record_delivery(&attempt(b.id, number)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.deliveries(a.id, 2, after).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    logged.reverse();
    assert_eq!(seen, logged, "every attempt of the subscription once, newest first");
    assert!(store.deliveries(Uuid::now_v7(), 10, None).await.unwrap().items.is_empty());
}

/// A receiver on loopback answering each request with the next status of
/// `statuses` (the last one repeated), keeping every request's head and body.
struct Receiver {
    url: String,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    served: Arc<AtomicUsize>,
}

async fn receiver(statuses: &'static [u16]) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let (kept, count) = (Arc::clone(&requests), Arc::clone(&served));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head, then as much body as Content-Length says.
            loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buffer.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let index = count.fetch_add(1, Ordering::SeqCst);
            kept.lock().unwrap().push(String::from_utf8_lossy(&buffer).to_string());
            let status = statuses[index.min(statuses.len() - 1)];
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    Receiver { url, requests, served }
}

fn header<'a>(request: &'a str, name: &str) -> &'a str {
    request
        .lines()
        .find_map(|line| line.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {name} in {request}"))
}

fn deliverer(store: &Arc<dyn Store>, schedule: &str) -> Deliverer {
    Deliverer::new(
        Arc::clone(store),
        RetrySchedule::parse(schedule).unwrap(),
        TargetPolicy { allow_insecure: true, allowed_network: None },
    )
    .unwrap()
}

/// Runs `job` as a queue would, without waiting for `not_before`.
async fn run_due(deliverer: &Deliverer, job: Job) -> Next {
    deliverer.run(Job { not_before: OffsetDateTime::now_utc(), ..job }).await.unwrap()
}

async fn a_failed_attempt_is_retried_signed_alike_and_logged(store: Arc<dyn Store>) {
    let receiver = receiver(&[500, 204]).await;
    let subscription = webhook(&receiver.url);
    store.create_webhook(&subscription, 25).await.unwrap();
    let deliverer = deliverer(&store, "60,600");
    let event = event();
    let first = deliverer.run(Job::first(subscription.id, event.clone(), OffsetDateTime::now_utc())).await.unwrap();
    let Next::Later(retry) = first else { panic!("{first:?}") };
    assert_eq!(retry.attempt, 2);
    let wait = (retry.not_before - OffsetDateTime::now_utc()).whole_seconds();
    assert!((50..=66).contains(&wait), "the first retry about 60 s later: {wait}");
    assert_eq!(deliverer.run(retry.clone()).await.unwrap(), Next::Later(retry.clone()), "not due yet: nothing sent");
    assert_eq!(receiver.served.load(Ordering::SeqCst), 1);
    assert_eq!(run_due(&deliverer, retry).await, Next::Done);

    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
        assert_eq!(header(request, "webhook-id"), event.id.to_string(), "the same id on every attempt");
        assert_eq!(header(request, "content-type"), "application/json");
        let body = request.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(serde_json::from_str::<Event>(body).unwrap(), event);
        let timestamp: i64 = header(request, "webhook-timestamp").parse().unwrap();
        assert!((timestamp - OffsetDateTime::now_utc().unix_timestamp()).abs() < 60);
        let expected = sign(&subscription.secret.key().unwrap(), &event.id.to_string(), timestamp, body.as_bytes());
        assert_eq!(header(request, "webhook-signature"), expected);
    }
    let log = store.deliveries(subscription.id, 10, None).await.unwrap().items;
    let states: Vec<(u32, Option<u16>, AttemptState, bool)> =
        log.iter().map(|a| (a.attempt, a.status, a.state, a.next_retry_at.is_some())).collect();
    assert_eq!(
        states,
        vec![(2, Some(204), AttemptState::Delivered, false), (1, Some(500), AttemptState::Retrying, true)]
    );
}

async fn the_last_failure_is_dead_lettered_and_an_unsubscribe_stops_retries(store: Arc<dyn Store>) {
    let receiver = receiver(&[503]).await;
    let subscription = webhook(&receiver.url);
    store.create_webhook(&subscription, 25).await.unwrap();
    let deliverer = deliverer(&store, "1");
    let first = deliverer.run(Job::first(subscription.id, event(), OffsetDateTime::now_utc())).await.unwrap();
    let Next::Later(retry) = first else { panic!("{first:?}") };
    let last = run_due(&deliverer, retry.clone()).await;
    assert_eq!(last, Next::DeadLetter(Job { not_before: last_job_time(&last), ..retry.clone() }));
    let log = store.deliveries(subscription.id, 10, None).await.unwrap().items;
    assert_eq!(log[0].state, AttemptState::Failed);
    assert_eq!(log[0].next_retry_at, None);

    store.delete_webhook(subscription.id).await.unwrap();
    assert_eq!(run_due(&deliverer, retry).await, Next::Done);
    assert_eq!(receiver.served.load(Ordering::SeqCst), 2, "nothing sent after the unsubscribe");
}

fn last_job_time(next: &Next) -> OffsetDateTime {
    match next {
        Next::DeadLetter(job) | Next::Later(job) => job.not_before,
        Next::Done => panic!("no job"),
    }
}

async fn a_rotated_subscription_is_signed_with_both_secrets(store: Arc<dyn Store>) {
    let receiver = receiver(&[200]).await;
    let subscription = webhook(&receiver.url);
    store.create_webhook(&subscription, 25).await.unwrap();
    let new = WebhookSecret::generate();
    store.rotate_webhook_secret(subscription.id, &new, OffsetDateTime::now_utc() + Duration::hours(24)).await.unwrap();
    let event = event();
    assert_eq!(
        deliverer(&store, "1")
            .run(Job::first(subscription.id, event.clone(), OffsetDateTime::now_utc()))
            .await
            .unwrap(),
        Next::Done
    );
    let request = receiver.requests.lock().unwrap()[0].clone();
    let timestamp: i64 = header(&request, "webhook-timestamp").parse().unwrap();
    let body = request.split_once("\r\n\r\n").unwrap().1.as_bytes();
    let signatures: HashSet<&str> = header(&request, "webhook-signature").split(' ').collect();
    let id = event.id.to_string();
    let expected: HashSet<String> =
        [&new, &subscription.secret].iter().map(|s| sign(&s.key().unwrap(), &id, timestamp, body)).collect();
    assert_eq!(signatures, expected.iter().map(String::as_str).collect());
}

async fn refused_and_unreachable_targets_are_logged_attempts(store: Arc<dyn Store>) {
    // A closed port: a transport error, retried.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let unreachable = webhook(&format!("http://{closed}/hook"));
    // The metadata address, stored by an older, laxer policy: refused at delivery.
    let metadata = webhook("http://169.254.169.254/latest/meta-data/");
    for subscription in [&unreachable, &metadata] {
        store.create_webhook(subscription, 25).await.unwrap();
        let next =
            deliverer(&store, "1").run(Job::first(subscription.id, event(), OffsetDateTime::now_utc())).await.unwrap();
        assert!(matches!(next, Next::Later(_)), "{next:?}");
        let logged = store.deliveries(subscription.id, 1, None).await.unwrap().items.remove(0);
        assert_eq!((logged.status, logged.state), (None, AttemptState::Retrying));
        let error = logged.error.unwrap();
        assert!(error.contains("connection failed") || error.contains("refused"), "{error}");
    }
    let logged = store.deliveries(metadata.id, 1, None).await.unwrap().items.remove(0);
    assert!(logged.error.unwrap().contains("link-local"));
}

store_contract!(
    subscriptions_are_kept_listed_newest_first_and_deleted,
    the_cap_holds_under_concurrent_creates_and_frees_on_delete,
    a_rotation_keeps_the_replaced_secret_until_its_overlap_ends,
    the_delivery_log_pages_newest_first_per_subscription,
    a_failed_attempt_is_retried_signed_alike_and_logged,
    the_last_failure_is_dead_lettered_and_an_unsubscribe_stops_retries,
    a_rotated_subscription_is_signed_with_both_secrets,
    refused_and_unreachable_targets_are_logged_attempts,
);

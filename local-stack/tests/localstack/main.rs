//! The asynchronous half of template.yaml on AWS's own wiring, deployed to
//! LocalStack by `local-stack/localstack.sh deploy`: the table's stream,
//! the bus and its rules, the queues and the schedule, each trigger as
//! CloudFormation made it. Each test starts from a function invocation (or
//! a write to the table) and waits, bounded, for what the triggers must do.
//!
//! Run by `local-stack/test-all.sh` after start and deploy (with a 20 s
//! reservation and a 2 s webhook retry schedule): `SHOP_LOCALSTACK_DIR` is
//! the script's state folder (endpoint, function names, queue URLs, the
//! cache's URL, the admin variables).

mod gateway;
mod receiver;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use gateway::Stack;

/// How long a trigger chain may take before the test fails: LocalStack's
/// stream pollers and Lambda cold starts take seconds, not minutes.
const CHAIN_BOUND: Duration = Duration::from_secs(90);

/// Polls `check` every half second until it gives a value or `bound` has
/// passed (then fails, saying what was awaited).
async fn eventually<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            eprintln!("{what}: after {:.1} s", started.elapsed().as_secs_f64());
            return value;
        }
        assert!(started.elapsed() < bound, "{what}: not within {} s", bound.as_secs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A product of a new category, created by the admin through its function.
async fn create_product(stack: &Stack, admin: &str, name: &str, stock: u32) -> String {
    let category = format!("LocalStack {}", run_id());
    let (status, body) =
        stack.route("categories-create", "POST", "/api/categories", Some(admin), Some(json!({"name": category}))).await;
    assert_eq!(status, 201, "{body}");
    let product =
        json!({"name": name, "description": "made on LocalStack", "price": 12.5, "category": category, "stock": stock});
    let (status, body) = stack.route("products-create", "POST", "/api/products", Some(admin), Some(product)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The admin's view of the event log: the events of `kind` about `id`.
async fn logged_events(stack: &Stack, admin: &str, kind: &str, id: &str) -> Vec<Value> {
    let query = format!("type={kind}&limit=100");
    let (status, body) = stack.route_with_query("events-list", "GET", "/api/events", &query, Some(admin)).await;
    assert_eq!(status, 200, "{body}");
    body["events"]
        .as_array()
        .or_else(|| body["items"].as_array())
        .unwrap_or_else(|| panic!("an event page: {body}"))
        .iter()
        .filter(|event| event.to_string().contains(id))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_created_product_reaches_the_event_log_and_the_cache_consumer_through_stream_and_bus() {
    let stack = Stack::from_env();
    let admin = stack.admin_token().await;
    let product_id = create_product(&stack, &admin, "Stream Lantern", 4).await;

    // stream -> events-publish -> bus -> events-record -> the log.
    let logged = eventually("product.created in the event log", CHAIN_BOUND, || async {
        let events = logged_events(&stack, &admin, "product.created", &product_id).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(logged.len(), 1, "recorded once: {logged:?}");

    // ... -> bus -> events-invalidate-cache: only that consumer touches the
    // product's own cache scope on a creation (the handler empties the
    // listings alone), so a generation for it proves the consumer ran (a
    // new random one at each invalidation).
    let generation_key = format!("shop:gen:product:{product_id}");
    eventually("the cache consumer's invalidation", CHAIN_BOUND, || stack.redis_get(&generation_key)).await;
}

#[tokio::test]
async fn a_webhook_is_delivered_signed_through_the_queue_and_retried_after_a_failure() {
    let stack = Stack::from_env();
    let admin = stack.admin_token().await;
    // Fails the first delivery (500), accepts the next.
    let receiver = receiver::Receiver::start(&stack.bridge, true).await;
    let subscription = json!({"url": receiver.url(), "events": ["product.created"], "description": "localstack test"});
    let (status, webhook) =
        stack.route("webhooks-create", "POST", "/api/webhooks", Some(&admin), Some(subscription)).await;
    assert_eq!(status, 201, "{webhook}");
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    let product_id = create_product(&stack, &admin, "Webhook Whistle", 2).await;

    // bus -> webhooks-fanout -> SQS -> webhooks-deliver -> the receiver,
    // refused once, then sent again after the retry schedule's delay.
    let deliveries = eventually("a delivery after a failed one", CHAIN_BOUND, || async {
        let received = receiver.received();
        let about_product: Vec<_> = received.into_iter().filter(|d| d.body.contains(&product_id)).collect();
        (about_product.len() >= 2).then_some(about_product)
    })
    .await;
    let (failed, accepted) = (&deliveries[0], &deliveries[1]);
    assert_eq!(failed.webhook_id, accepted.webhook_id, "the same message, attempted twice");
    for delivery in [failed, accepted] {
        assert!(delivery.signature_is_valid(&secret), "signed with the subscription's secret: {delivery:?}");
        let event: Value = serde_json::from_str(&delivery.body).unwrap();
        assert_eq!(event["type"], "product.created", "{event}");
    }
}

#[tokio::test]
async fn orders_expire_on_the_schedule_and_return_their_stock() {
    let stack = Stack::from_env();
    let admin = stack.admin_token().await;
    let product_id = create_product(&stack, &admin, "Expiring Easel", 5).await;
    let buyer = stack.customer_token().await;
    let order = json!({"items": [{"productId": product_id, "quantity": 2}]});
    let (status, placed) = stack.route("orders-create", "POST", "/api/orders", Some(&buyer), Some(order)).await;
    assert_eq!(status, 201, "{placed}");
    let order_id = placed["id"].as_str().unwrap().to_owned();
    let stock = |body: &Value| body["stock"].as_u64();
    let (_, product) = stack.product(&product_id).await;
    assert_eq!(stock(&product), Some(3), "reserved: {product}");

    // rate(1 minute) -> orders-expire, after the 20 s reservation.
    let bound = Duration::from_secs(150);
    eventually("the order expired by the schedule", bound, || async {
        let path = format!("/api/orders/{order_id}");
        let (status, body) = stack.route_with_id("orders-get", "GET", &path, "id", &order_id, Some(&buyer)).await;
        assert_eq!(status, 200, "{body}");
        (body["status"] == "expired").then_some(())
    })
    .await;
    let (_, product) = stack.product(&product_id).await;
    assert_eq!(stock(&product), Some(5), "the units came back: {product}");
}

/// Run alone, after the others (`-- --ignored`): until the poison record
/// has used up its retries (MaximumRetryAttempts, with LocalStack's
/// backoff over a minute), every later record of its shard waits, and so
/// would the other tests' events. LocalStack does not bisect a failing
/// batch (AWS does, until the poison record is alone): the records that
/// shared the poison's batch go to the failure queue with it, so the record
/// that shows the stream moving on is written once the poison is out.
#[tokio::test]
#[ignore = "holds back the stream for a minute: run alone, after the others, with --ignored"]
async fn a_poison_stream_record_goes_to_the_failure_queue_and_the_stream_moves_on() {
    let stack = Stack::from_env();
    let admin = stack.admin_token().await;
    // A product item no version of the code could read: its price is not
    // a number. events-publish names it as the batch's failure.
    let poison_id = uuid::Uuid::now_v7().to_string();
    stack
        .put_item(json!({
            "PK": {"S": format!("PRODUCT#{poison_id}")},
            "SK": {"S": "PRODUCT"},
            "entity": {"S": "product"},
            "id": {"S": poison_id},
            "price": {"S": "not a price"}
        }))
        .await;
    // Both stream consumers fail on it (search-index reads products too),
    // each sending its batch's position to the failure queue in the end:
    // events-publish's is the one that holds back the event log.
    let failures =
        eventually("events-publish's poison batch in the failure queue", Duration::from_secs(240), || async {
            let messages = stack.receive_messages("StreamFailureQueue").await;
            let exhausted: Vec<Value> = messages
                .iter()
                .filter_map(|m| serde_json::from_str::<Value>(m).ok())
                .filter(|m| m["requestContext"]["condition"] == "RetryAttemptsExhausted")
                .filter(|m| {
                    m["requestContext"]["functionArn"].as_str().is_some_and(|arn| arn.contains("EventsPublish"))
                })
                .collect();
            (!exhausted.is_empty()).then_some(exhausted)
        })
        .await;
    let batch = &failures[0]["DDBStreamBatchInfo"];
    assert!(batch["startSequenceNumber"].is_string() && batch["streamArn"].is_string(), "{}", failures[0]);
    let product_id = create_product(&stack, &admin, "After The Poison", 1).await;
    eventually("the next record's event, past the poison", CHAIN_BOUND, || async {
        (!logged_events(&stack, &admin, "product.created", &product_id).await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_queue_message_is_named_alone_and_the_others_are_delivered() {
    let stack = Stack::from_env();
    let admin = stack.admin_token().await;
    let receiver = receiver::Receiver::start(&stack.bridge, false).await;
    let subscription = json!({"url": receiver.url(), "events": ["product.created"]});
    let (status, webhook) =
        stack.route("webhooks-create", "POST", "/api/webhooks", Some(&admin), Some(subscription)).await;
    assert_eq!(status, 201, "{webhook}");
    stack.send_message("WebhookDeliveryQueue", "this is not a delivery job").await;
    let product_id = create_product(&stack, &admin, "Queue Quill", 1).await;

    eventually("the good job's delivery", CHAIN_BOUND, || async {
        receiver.received().iter().any(|d| d.body.contains(&product_id)).then_some(())
    })
    .await;
    // The unreadable one was reported as the batch's failure: it stays on
    // the queue (in flight, until its redrive to the dead letters after
    // five receives), instead of being deleted with the batch.
    let attributes = stack.queue_attributes("WebhookDeliveryQueue").await;
    let waiting: u64 = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        .iter()
        .map(|name| attributes[*name].as_str().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
        .sum();
    assert!(waiting >= 1, "the unreadable message is still on the queue: {attributes}");
}

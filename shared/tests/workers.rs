//! The worker functions' handlers fed by their sample events in `events/`
//! (what `cargo lambda invoke --data-file` and `sam local invoke` send).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use shop::cache::generational::{GenerationalCache, Lookup};
use shop::cache::memory::MemoryCache;
use shop::domain::{Money, Order, OrderId, OrderItem, OrderStatus, Product, ProductId, ProductName, UserId};
use shop::events::consumers::by_name;
use shop::events::stream::{EventSink, StreamEvent};
use shop::events::{Event, EventType, Mapping};
use shop::metrics::MetricsSink;
use shop::store::EventQuery;
use shop::store::embedded::EmbeddedStore;
use shop::webhooks::{Deliverer, DeliveryQueue, EventFilter, FanOut, Job, QueueError, Webhook, WebhookSecret};
use shop::workers::{self, BusEvent, QueueBatch};
use shop::{App, Config};
use time::{Duration, OffsetDateTime};

fn sample<T: serde::de::DeserializeOwned>(function: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(format!("{function}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Harness {
    app: Arc<App>,
    _dir: tempfile::TempDir,
}

fn harness(variables: &[(&str, &str)]) -> Harness {
    let config =
        Config::from_lookup(|name| variables.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let app = App::new(config, store, Arc::new(MemoryCache::new()), b"workers-test-secret-workers-test-secret");
    Harness { app: Arc::new(app), _dir: dir }
}

/// Keeps what it is given; fails every put while `failing`.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
    failing: bool,
}

#[async_trait]
impl EventSink for Recorder {
    async fn put(&self, events: &[Event]) -> Result<(), String> {
        if self.failing {
            return Err("the bus is down".into());
        }
        self.events.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

#[tokio::test]
async fn events_publish_puts_each_change_of_the_sample_batch_on_the_bus() {
    let batch: StreamEvent = sample("events-publish");
    let sink = Recorder::default();
    let response = workers::publish_batch(&batch, &Mapping::default(), &sink, &MetricsSink::Off).await;
    assert!(response.batch_item_failures.is_empty());
    let types: Vec<EventType> = sink.events.lock().unwrap().iter().map(Event::event_type).collect();
    // The idempotency record's insert means nothing; the rest one each,
    // and the stock going 6 -> 4 is also stock-low.
    assert_eq!(
        types,
        [
            EventType::ProductCreated,
            EventType::ProductUpdated,
            EventType::ProductStockLow,
            EventType::OrderPlaced,
            EventType::OrderCancelled
        ]
    );
    // Redelivered, the batch yields the same ids.
    let again = Recorder::default();
    workers::publish_batch(&batch, &Mapping::default(), &again, &MetricsSink::Off).await;
    assert_eq!(*again.events.lock().unwrap(), *sink.events.lock().unwrap());
    let cancelled = sink.events.lock().unwrap()[4].clone();
    let json = serde_json::to_value(&cancelled).unwrap();
    assert_eq!(json["data"]["by"]["kind"], "user");
    assert_eq!(json["data"]["by"]["role"], "customer");
}

#[tokio::test]
async fn events_publish_names_the_first_record_it_could_not_publish() {
    let batch: StreamEvent = sample("events-publish");
    let down = Recorder { failing: true, ..Default::default() };
    let response = workers::publish_batch(&batch, &Mapping::default(), &down, &MetricsSink::Off).await;
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "100000000000000000001"}]}));

    // A record that cannot be decoded is named; what came before it is put.
    let mut corrupt = batch.clone();
    corrupt.records[2].dynamodb.new_image.as_mut().unwrap().remove("totalAmount");
    let sink = Recorder::default();
    let response = workers::publish_batch(&corrupt, &Mapping::default(), &sink, &MetricsSink::Off).await;
    assert_eq!(response.batch_item_failures[0].item_identifier, "100000000000000000003");
    assert_eq!(sink.events.lock().unwrap().len(), 3, "the two product records' events");
}

#[tokio::test]
async fn events_record_keeps_the_sample_event_once_however_often_it_comes() {
    let h = harness(&[]);
    let event: BusEvent = sample("events-record");
    assert_eq!((event.source.as_str(), event.detail_type.as_str()), ("shop.api", "order.placed"));
    let consumer = by_name(&h.app, "events-record").unwrap();
    for _ in 0..3 {
        workers::consume(consumer.as_ref(), &event, &MetricsSink::Off).await.unwrap();
    }
    let page = h.app.store.list_events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.items, [event.detail]);
}

#[tokio::test]
async fn events_invalidate_cache_makes_the_products_cached_page_a_miss() {
    let h = harness(&[]);
    let event: BusEvent = sample("events-invalidate-cache");
    let serde_json::Value::String(product_id) =
        serde_json::to_value(&event.detail).unwrap()["data"]["productId"].clone()
    else {
        panic!("no product id")
    };
    let scope = format!("product:{product_id}");
    let catalog = &h.app.catalog_cache;
    let Lookup::Miss { generation: Some(generation) } = catalog.get(&scope, "json").await else { panic!("cold") };
    catalog.put(&scope, &generation, "json", b"{\"price\":10.0}", std::time::Duration::from_secs(60)).await;
    assert!(matches!(catalog.get(&scope, "json").await, Lookup::Hit(_)));
    let consumer = by_name(&h.app, "events-invalidate-cache").unwrap();
    workers::consume(consumer.as_ref(), &event, &MetricsSink::Off).await.unwrap();
    assert!(matches!(catalog.get(&scope, "json").await, Lookup::Miss { .. }), "stale page gone");
}

#[tokio::test]
async fn orders_expire_moves_old_pending_orders_to_expired_and_leaves_the_rest() {
    let h = harness(&[("ORDER_RESERVATION_SECONDS", "1800")]);
    let _: serde_json::Value = sample("orders-expire");
    let now = OffsetDateTime::now_utc();
    let product = Product {
        id: ProductId::new(),
        name: ProductName::parse("Rake").unwrap(),
        description: Default::default(),
        price: Money::from_minor(1000),
        category: shop::domain::CategoryName::parse("Garden").unwrap(),
        stock: 10,
        stock_counters: 1,
        created_at: now,
        updated_at: now,
    };
    h.app.store.create_product(&product).await.unwrap();
    let order_at = |age: Duration| {
        let at = now - age;
        let ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
        let id =
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000));
        Order {
            id: OrderId(id),
            user_id: UserId::new(),
            items: vec![OrderItem {
                product_id: product.id,
                product_name: "Rake".into(),
                quantity: 2,
                price_minor: 1000,
            }],
            total_amount: Money::from_minor(2000),
            status: OrderStatus::Pending,
            source: shop::domain::OrderSource::Api,
            payment: Default::default(),
            created_at: at,
            updated_at: at,
        }
    };
    let (stale, fresh) = (order_at(Duration::minutes(45)), order_at(Duration::minutes(5)));
    h.app.store.place_order(&stale, None).await.unwrap();
    h.app.store.place_order(&fresh, None).await.unwrap();
    let sweep = workers::expire(&h.app, now).await.unwrap();
    assert_eq!((sweep.expired, sweep.lost_races), (1, 0));
    assert_eq!(h.app.store.order_by_id(stale.id).await.unwrap().unwrap().status, OrderStatus::Expired);
    assert_eq!(h.app.store.order_by_id(fresh.id).await.unwrap().unwrap().status, OrderStatus::Pending);
    assert_eq!(h.app.store.product_by_id(product.id).await.unwrap().unwrap().stock, 8, "2 back of the 4 reserved");
    assert_eq!(workers::expire(&h.app, now).await.unwrap().expired, 0, "nothing twice");

    let off = harness(&[("ORDER_RESERVATION_SECONDS", "0")]);
    off.app.store.create_product(&product).await.unwrap();
    off.app.store.place_order(&stale, None).await.unwrap();
    assert_eq!(workers::expire(&off.app, now).await.unwrap().expired, 0, "0 turns expiry off");
}

/// Keeps what is queued and dead-lettered.
#[derive(Default)]
struct RecordingQueue {
    queued: Mutex<Vec<Job>>,
    dead: Mutex<Vec<Job>>,
}

#[async_trait]
impl DeliveryQueue for RecordingQueue {
    async fn enqueue(&self, jobs: Vec<Job>) -> Result<(), QueueError> {
        self.queued.lock().unwrap().extend(jobs);
        Ok(())
    }

    async fn dead_letter(&self, job: Job) -> Result<(), QueueError> {
        self.dead.lock().unwrap().push(job);
        Ok(())
    }
}

fn subscription(id: uuid::Uuid, url: &str, events: EventFilter) -> Webhook {
    Webhook {
        id,
        url: url.into(),
        events,
        description: String::new(),
        created_at: OffsetDateTime::now_utc(),
        secret: WebhookSecret::generate(),
        previous_secret: None,
    }
}

#[tokio::test]
async fn webhooks_fanout_queues_one_job_per_subscription_matching_the_sample_event() {
    let h = harness(&[]);
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    let filters = [
        EventFilter::All,
        EventFilter::Only(vec![EventType::OrderPlaced]),
        EventFilter::Only(vec![EventType::ProductCreated]),
    ];
    for (id, events) in ids.iter().zip(filters) {
        h.app.store.create_webhook(&subscription(*id, "https://hooks.example.com/", events), 25).await.unwrap();
    }
    let event: BusEvent = sample("webhooks-fanout");
    let queue = Arc::new(RecordingQueue::default());
    let fanout = FanOut::new(Arc::clone(&h.app.store), queue.clone());
    workers::consume(&fanout, &event, &MetricsSink::Off).await.unwrap();
    let queued = queue.queued.lock().unwrap().clone();
    let mut targets: Vec<uuid::Uuid> = queued.iter().map(|job| job.webhook_id).collect();
    targets.sort();
    assert_eq!(targets, vec![ids[0], ids[1]], "the catch-all and the order.placed subscriptions");
    assert!(queued.iter().all(|job| job.attempt == 1 && job.event == event.detail));
}

#[tokio::test]
async fn webhooks_deliver_runs_the_sample_batch_and_names_only_messages_that_could_not_run() {
    let h = harness(&[("WEBHOOK_ALLOW_INSECURE_URLS", "true"), ("WEBHOOK_RETRY_SCHEDULE_SECONDS", "30")]);
    let deliverer = Deliverer::from_app(&h.app).unwrap();
    let queue = RecordingQueue::default();
    let mut batch: QueueBatch = sample("webhooks-deliver");
    // Its subscription does not exist: nothing to do, acknowledged.
    assert!(workers::deliver_batch(&deliverer, &queue, &batch).await.batch_item_failures.is_empty());
    assert!(queue.queued.lock().unwrap().is_empty());

    // Subscribed to a closed port: the attempt fails, its retry is queued
    // 30 s later, and the message is acknowledged; an unreadable message
    // is named.
    let job: Job = serde_json::from_str(&batch.records[0].body).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    h.app
        .store
        .create_webhook(&subscription(job.webhook_id, &format!("http://{closed}/hook"), EventFilter::All), 25)
        .await
        .unwrap();
    let mut unreadable = batch.records[0].clone();
    unreadable.message_id = "unreadable".into();
    unreadable.body = "{\"webhookId\": 1}".into();
    batch.records.push(unreadable);
    let response = workers::deliver_batch(&deliverer, &queue, &batch).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "unreadable"}]})
    );
    let queued = queue.queued.lock().unwrap().clone();
    assert_eq!(queued.len(), 1);
    assert_eq!((queued[0].webhook_id, queued[0].attempt), (job.webhook_id, 2));
    let wait = (queued[0].not_before - OffsetDateTime::now_utc()).whole_seconds();
    assert!((25..=33).contains(&wait), "{wait}");
    let log = h.app.store.deliveries(job.webhook_id, 10, None).await.unwrap().items;
    assert_eq!(log.len(), 1);
    assert!(log[0].error.as_deref().unwrap().contains("connection failed"), "{:?}", log[0].error);
}

#[tokio::test]
async fn search_index_writes_the_sample_batchs_product_under_its_last_name_only() {
    let Some(endpoint) = std::env::var("SHOP_TEST_DYNAMODB_URL").ok().filter(|url| !url.is_empty()) else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "SHOP_TEST_DYNAMODB_URL is not set");
        return;
    };
    let table = format!("shop-test-{}", uuid::Uuid::new_v4().simple());
    let config = Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        "TABLE_NAME" => Some(table.clone()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.clone()),
        _ => None,
    })
    .unwrap();
    let store = shop::store::dynamodb::DynamoStore::connect(&config).await;
    shop::store::dynamodb::table::create_if_missing(store.client(), store.table()).await.unwrap();
    let batch: StreamEvent = sample("search-index");
    let listings = GenerationalCache::new(Arc::new(MemoryCache::new()));
    // The listings' cache scope (`handlers::products::LIST_SCOPE`).
    const LIST_SCOPE: &str = "products";
    for _ in 0..2 {
        // A search page cached before the batch is dropped by it (the
        // product was created); redelivered, the batch writes the same
        // entries again.
        let Lookup::Miss { generation: Some(generation) } = listings.get(LIST_SCOPE, "q=rake").await else {
            panic!("an empty cache misses")
        };
        listings.put(LIST_SCOPE, &generation, "q=rake", b"[]", std::time::Duration::from_secs(60)).await;
        let response = workers::index_batch(&store, &listings, &batch).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(matches!(listings.get(LIST_SCOPE, "q=rake").await, Lookup::Miss { .. }), "the cached page is stale");
    }
    use shop::store::CatalogStore;
    let search = |q: &str| shop::domain::ProductQuery {
        terms: shop::domain::SearchTerms::parse(q).unwrap(),
        limit: 10,
        ..Default::default()
    };
    let found = store.list_products(&search("leaf rak")).await.unwrap().items;
    assert_eq!(found.iter().map(|p| p.stock).collect::<Vec<_>>(), [4], "the batch's last image");
    assert!(store.list_products(&search("garden")).await.unwrap().items.is_empty(), "the first name is not a hit");
}

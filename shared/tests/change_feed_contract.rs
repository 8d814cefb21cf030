//! The change feed's contract, on both stores: every change is in the feed
//! (the embedded store's outbox, the DynamoDB table's stream), written
//! atomically with it, and maps to the same events through the one mapping;
//! and the admin event log's contract.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use shop::domain::{
    Category, CategoryName, Description, Email, Money, Order, OrderId, OrderItem, OrderStatus, Product, ProductId,
    ProductName, Role, StockChange, User, UserId, UserName, UserStatus,
};
use shop::events::envelope::{EventData, SCHEMA_VERSION, StockLow};
use shop::events::poller::StreamPoller;
use shop::events::stream::changes_of;
use shop::events::{Actor, Event, EventType, Mapping, events_of};
use shop::store::{EventQuery, ProductUpdate, Store};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

/// One of everything that has an event, and some writes that have none.
async fn make_changes(store: &Arc<dyn Store>) {
    let at = now();
    let user = User {
        id: UserId::new(),
        email: Email::parse("feed@example.com").unwrap(),
        name: UserName::parse("Feed").unwrap(),
        role: Role::Customer,
        password_hash: "hash".into(),
        status: UserStatus::Active,
        session_version: 0,
        created_at: at,
        updated_at: at,
    };
    store.create_user(&user).await.unwrap();
    let renamed = User { name: UserName::parse("Fed").unwrap(), ..user.clone() };
    store.update_user(&renamed, &user).await.unwrap();
    store.revoke_token("jti-1", at + Duration::hours(1)).await.unwrap();
    let category = Category {
        id: uuid::Uuid::now_v7(),
        name: CategoryName::parse("Kitchen").unwrap(),
        description: Description::default(),
        created_at: at,
    };
    store.create_category(&category).await.unwrap();
    let mug = Product {
        id: ProductId::new(),
        name: ProductName::parse("Mug").unwrap(),
        description: Description::default(),
        price: Money::from_minor(1000),
        category: category.name.clone(),
        stock: 6,
        stock_counters: 1,
        created_at: at,
        updated_at: at,
    };
    store.create_product(&mug).await.unwrap();
    let update = ProductUpdate {
        id: mug.id,
        name: mug.name.clone(),
        description: mug.description.clone(),
        price: Money::from_minor(1500),
        category: mug.category.clone(),
        stock: StockChange::Keep,
        stock_counters: 1,
        updated_at: at,
    };
    store.update_product(&update).await.unwrap();
    let order = |quantity| Order {
        id: OrderId::new(),
        user_id: user.id,
        items: vec![OrderItem { product_id: mug.id, product_name: "Mug".into(), quantity, price_minor: 1500 }],
        total_amount: Money::from_minor(1500 * quantity),
        status: OrderStatus::Pending,
        source: shop::domain::OrderSource::Api,
        payment: Default::default(),
        created_at: at,
        updated_at: at,
    };
    let (first, second) = (order(2), order(1));
    store.place_order(&first, None).await.unwrap();
    let customer = Actor::User { user_id: user.id, role: Role::Customer };
    store.change_order_status(&first, OrderStatus::Cancelled, at, &customer).await.unwrap();
    store.place_order(&second, None).await.unwrap();
    store.change_order_status(&second, OrderStatus::Expired, at, &Actor::reservation_expiry()).await.unwrap();
    store.delete_product(mug.id).await.unwrap();
}

fn expected() -> BTreeMap<EventType, usize> {
    use EventType::*;
    BTreeMap::from([
        (UserRegistered, 1),
        (CategoryCreated, 1),
        (ProductCreated, 1),
        // The price, then the stock: reserved, returned, reserved, returned.
        (ProductUpdated, 5),
        (ProductStockLow, 1),
        (OrderPlaced, 2),
        (OrderCancelled, 1),
        (OrderExpired, 1),
        (ProductDeleted, 1),
    ])
}

fn check(events: &[Event]) {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.event_type()).or_insert(0) += 1;
    }
    assert_eq!(counts, expected(), "{events:#?}");
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");
    let cancelled = events.iter().find(|e| e.event_type() == EventType::OrderCancelled).unwrap();
    let EventData::OrderCancelled(change) = &cancelled.data else { unreachable!() };
    assert!(matches!(change.by, Some(Actor::User { role: Role::Customer, .. })), "{change:?}");
    let price = events.iter().find_map(|e| match &e.data {
        EventData::ProductUpdated(u) => u.changes.get("price").cloned(),
        _ => None,
    });
    assert_eq!(price.map(|c| (c.old, c.new)), Some((serde_json::json!(10.0), serde_json::json!(15.0))));
}

#[tokio::test]
async fn embedded_the_outbox_holds_every_change_once() {
    let fixture = common::embedded_store().unwrap();
    let store = fixture.store.clone();
    make_changes(&store).await;
    let feed = store.change_feed().expect("the embedded store keeps a feed");
    let changes = feed.changes_after(None, 1000).await.unwrap();
    let events: Vec<Event> = changes.iter().flat_map(|c| events_of(c, &Mapping::default())).collect();
    check(&events);
    // Reading again yields the same events with the same ids.
    let again = feed.changes_after(None, 1000).await.unwrap();
    assert_eq!(again.iter().flat_map(|c| events_of(c, &Mapping::default())).collect::<Vec<_>>(), events);
    // Acknowledged changes are gone; reading resumes after a position.
    let (done, rest) = changes.split_at(3);
    feed.acknowledge(done.iter().map(|c| c.id.clone()).collect()).await.unwrap();
    let left = feed.changes_after(None, 1000).await.unwrap();
    assert_eq!(left.len(), rest.len());
    assert_eq!(feed.changes_after(Some(rest[0].id.clone()), 1000).await.unwrap().len(), rest.len() - 1);
}

#[tokio::test]
async fn dynamodb_the_stream_holds_every_change_once() {
    let Some(endpoint) = common::server_url("SHOP_TEST_DYNAMODB_URL") else {
        return;
    };
    let (dynamo, config) = common::fresh_dynamo(&endpoint).await;
    let store: Arc<dyn Store> = Arc::new(dynamo.clone());
    make_changes(&store).await;
    let mut poller = StreamPoller::open(&config, &dynamo, None).await.unwrap();
    let mut events = Vec::new();
    let mut records = 0;
    for _ in 0..50 {
        let batches = poller.poll().await.unwrap();
        for (_, batch) in &batches {
            records += batch.records.len();
            for (_, change) in changes_of(batch) {
                if let Some(change) = change.unwrap() {
                    events.extend(events_of(&change, &Mapping::default()));
                }
            }
        }
        if events.len() >= expected().values().sum::<usize>() && batches.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(records > events.len() / 2, "records of items without events are read and skipped");
    check(&events);
}

fn logged(n: u32, event_type_low: bool, occurred_at: OffsetDateTime) -> Event {
    let data = EventData::ProductStockLow(StockLow {
        product_id: ProductId::new(),
        name: format!("p{n}"),
        stock: 1,
        threshold: 5,
    });
    let data = if event_type_low {
        data
    } else {
        EventData::ProductDeleted(shop::events::envelope::ProductSnapshot {
            product_id: ProductId::new(),
            name: format!("p{n}"),
            description: String::new(),
            price: Money::from_minor(100),
            category: "Kitchen".into(),
            stock: 0,
        })
    };
    Event { id: uuid::Uuid::new_v4(), schema_version: SCHEMA_VERSION, occurred_at, data }
}

async fn the_event_log_keeps_each_event_once_newest_first_for_30_days(store: Arc<dyn Store>) {
    let base = OffsetDateTime::now_utc() - Duration::minutes(10);
    let events: Vec<Event> = (0..7).map(|n| logged(n, n % 2 == 0, base + Duration::seconds(i64::from(n)))).collect();
    for event in &events {
        store.record_event(event).await.unwrap();
    }
    // Redelivered: stored once.
    store.record_event(&events[3]).await.unwrap();
    let old = logged(99, true, OffsetDateTime::now_utc() - Duration::days(31));
    store.record_event(&old).await.unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_events(&EventQuery { event_type: None, limit: 3, after }).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|e| e.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<uuid::Uuid> = events.iter().rev().map(|e| e.id).collect();
    assert_eq!(seen, newest_first, "each once, newest first, nothing older than 30 days");

    let low = store
        .list_events(&EventQuery { event_type: Some(EventType::ProductStockLow), limit: 2, after: None })
        .await
        .unwrap();
    assert_eq!(low.items.iter().map(|e| e.id).collect::<Vec<_>>(), [events[6].id, events[4].id]);
    let rest = store
        .list_events(&EventQuery { event_type: Some(EventType::ProductStockLow), limit: 10, after: low.next })
        .await
        .unwrap();
    assert_eq!(rest.items.iter().map(|e| e.id).collect::<Vec<_>>(), [events[2].id, events[0].id]);
    assert_eq!(rest.next, None);
    assert_eq!(store.list_events(&EventQuery { limit: 10, ..Default::default() }).await.unwrap().items[0], events[6]);
}

store_contract!(the_event_log_keeps_each_event_once_newest_first_for_30_days);

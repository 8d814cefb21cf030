//! The order half of the store port's contract, run against every adapter.

mod common;

use common::{order_of, stocked};

use std::sync::Arc;

use shop::domain::Role;
use shop::domain::payment::StockMove;
use shop::domain::{Order, OrderId, OrderStatus, Payment, PaymentStatus, Product, UserId};
use shop::events::Actor;
use shop::store::{IdempotencyClaim, Store, StoreError};
use time::{Duration, OffsetDateTime};

fn admin() -> Actor {
    Actor::User { user_id: UserId::new(), role: Role::Admin }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

async fn stock_of(store: &Arc<dyn Store>, product: &Product) -> u64 {
    store.product_by_id(product.id).await.unwrap().unwrap().stock
}

async fn placing_an_order_reserves_every_line_or_nothing(store: Arc<dyn Store>) {
    let (mug, pan) = (stocked(&store, "Mug", 950, 5).await, stocked(&store, "Pan", 2500, 1).await);
    let user = UserId::new();
    let order = order_of(user, &[(&mug, 2), (&pan, 1)]);
    store.place_order(&order, None).await.unwrap();
    assert_eq!(store.order_by_id(order.id).await.unwrap().as_ref(), Some(&order));
    assert_eq!((stock_of(&store, &mug).await, stock_of(&store, &pan).await), (3, 0));

    let too_much = order_of(user, &[(&mug, 3), (&pan, 1)]);
    let result = store.place_order(&too_much, None).await;
    assert!(matches!(result, Err(StoreError::InsufficientStock(ref short)) if short == &[pan.id]), "{result:?}");
    assert_eq!((stock_of(&store, &mug).await, stock_of(&store, &pan).await), (3, 0), "nothing reserved");
    assert!(store.order_by_id(too_much.id).await.unwrap().is_none());

    let both_short = order_of(user, &[(&mug, 4), (&pan, 2)]);
    let result = store.place_order(&both_short, None).await;
    assert!(matches!(result, Err(StoreError::InsufficientStock(ref short)) if short.len() == 2), "{result:?}");
}

async fn concurrent_buyers_never_oversell(store: Arc<dyn Store>) {
    let lamp = stocked(&store, "Lamp", 1000, 10).await;
    let attempts = (0..30).map(|_| {
        let (store, order) = (Arc::clone(&store), order_of(UserId::new(), &[(&lamp, 1)]));
        async move { store.place_order(&order, None).await }
    });
    let results = futures::future::join_all(attempts).await;
    let placed = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(StoreError::InsufficientStock(_)))).count();
    assert_eq!((placed, refused), (10, 20), "{results:?}");
    assert_eq!(stock_of(&store, &lamp).await, 0);
}

async fn cancelling_returns_the_stock_once_even_when_cancels_race(store: Arc<dyn Store>) {
    let kettle = stocked(&store, "Kettle", 3000, 4).await;
    let order = order_of(UserId::new(), &[(&kettle, 3)]);
    store.place_order(&order, None).await.unwrap();
    let cancels = (0..5).map(|_| {
        let (store, order) = (Arc::clone(&store), order.clone());
        async move { store.change_order_status(&order, OrderStatus::Cancelled, now(), &admin()).await }
    });
    let results = futures::future::join_all(cancels).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(StoreError::StatusChanged))));
    assert_eq!(stock_of(&store, &kettle).await, 4);
    assert_eq!(store.order_by_id(order.id).await.unwrap().unwrap().status, OrderStatus::Cancelled);
}

async fn a_status_change_is_a_compare_and_set(store: Arc<dyn Store>) {
    let cup = stocked(&store, "Cup", 500, 2).await;
    let order = order_of(UserId::new(), &[(&cup, 1)]);
    store.place_order(&order, None).await.unwrap();
    let confirmed = store.change_order_status(&order, OrderStatus::Confirmed, now(), &admin()).await.unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    let stale = store.change_order_status(&order, OrderStatus::Cancelled, now(), &admin()).await;
    assert!(matches!(stale, Err(StoreError::StatusChanged)), "{stale:?}");
    assert_eq!(stock_of(&store, &cup).await, 1, "a refused cancel returns nothing");
    let shipped = store.change_order_status(&confirmed, OrderStatus::Shipped, now(), &admin()).await.unwrap();
    assert_eq!(store.order_by_id(order.id).await.unwrap().unwrap(), shipped);
}

async fn a_cancelled_order_whose_product_was_deleted_still_cancels(store: Arc<dyn Store>) {
    let (bowl, plate) = (stocked(&store, "Bowl", 700, 3).await, stocked(&store, "Plate", 800, 3).await);
    let order = order_of(UserId::new(), &[(&bowl, 1), (&plate, 2)]);
    store.place_order(&order, None).await.unwrap();
    store.delete_product(bowl.id).await.unwrap();
    store.change_order_status(&order, OrderStatus::Cancelled, now(), &admin()).await.unwrap();
    assert_eq!(stock_of(&store, &plate).await, 3);
    assert!(store.product_by_id(bowl.id).await.unwrap().is_none(), "no half product was recreated");
}

async fn orders_list_newest_first_per_user_and_per_status(store: Arc<dyn Store>) {
    let spoon = stocked(&store, "Spoon", 100, 100).await;
    let (ada, bob) = (UserId::new(), UserId::new());
    let mut adas = Vec::new();
    for i in 0..7 {
        let order = order_of(if i % 3 == 2 { bob } else { ada }, &[(&spoon, 1)]);
        store.place_order(&order, None).await.unwrap();
        if order.user_id == ada {
            adas.push(order);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let confirmed = store.change_order_status(&adas[1], OrderStatus::Confirmed, now(), &admin()).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.orders_of_user(ada, None, 2, after).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|o| o.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<OrderId> = adas.iter().rev().map(|o| o.id).collect();
    assert_eq!(seen, newest_first);
    let pending = store.orders_of_user(ada, Some(OrderStatus::Pending), 10, None).await.unwrap();
    assert_eq!(pending.items.len(), 4);
    let by_status = store.orders_by_status(OrderStatus::Confirmed, 10, None).await.unwrap();
    assert_eq!(by_status.items, vec![confirmed]);
    assert_eq!(store.orders_by_status(OrderStatus::Pending, 10, None).await.unwrap().items.len(), 6);
}

async fn an_idempotency_key_replays_its_response_and_refuses_another_body(store: Arc<dyn Store>) {
    let fork = stocked(&store, "Fork", 100, 5).await;
    let user = UserId::new();
    let IdempotencyClaim::Acquired(ticket) = store.claim_idempotency_key(user, "key-1", "body-a", now()).await.unwrap()
    else {
        panic!("first claim")
    };
    assert_eq!(
        store.claim_idempotency_key(user, "key-1", "body-a", now()).await.unwrap(),
        IdempotencyClaim::InProgress
    );
    assert_eq!(store.claim_idempotency_key(user, "key-1", "body-b", now()).await.unwrap(), IdempotencyClaim::Mismatch);
    let order = order_of(user, &[(&fork, 1)]);
    store.place_order(&order, Some((&ticket, "{\"id\":1}"))).await.unwrap();
    let replay = store.claim_idempotency_key(user, "key-1", "body-a", now()).await.unwrap();
    assert_eq!(replay, IdempotencyClaim::Replay { status: 201, body: "{\"id\":1}".into() });
    assert_eq!(store.claim_idempotency_key(user, "key-1", "body-b", now()).await.unwrap(), IdempotencyClaim::Mismatch);
    // Keys are per user, and expire.
    assert!(matches!(
        store.claim_idempotency_key(UserId::new(), "key-1", "x", now()).await.unwrap(),
        IdempotencyClaim::Acquired(_)
    ));
    let tomorrow = now() + Duration::hours(25);
    assert!(matches!(
        store.claim_idempotency_key(user, "key-1", "body-b", tomorrow).await.unwrap(),
        IdempotencyClaim::Acquired(_)
    ));
}

async fn a_released_or_abandoned_claim_can_be_taken(store: Arc<dyn Store>) {
    let user = UserId::new();
    let IdempotencyClaim::Acquired(ticket) = store.claim_idempotency_key(user, "k", "body", now()).await.unwrap()
    else {
        panic!()
    };
    store.release_idempotency_key(&ticket).await.unwrap();
    let IdempotencyClaim::Acquired(_abandoned) = store.claim_idempotency_key(user, "k", "body", now()).await.unwrap()
    else {
        panic!("released key is free")
    };
    let later = now() + Duration::seconds(31);
    assert!(matches!(
        store.claim_idempotency_key(user, "k", "body", later).await.unwrap(),
        IdempotencyClaim::Acquired(_)
    ));
}

async fn a_failed_order_leaves_the_key_claimed_but_unanswered(store: Arc<dyn Store>) {
    let knife = stocked(&store, "Knife", 100, 0).await;
    let user = UserId::new();
    let IdempotencyClaim::Acquired(ticket) = store.claim_idempotency_key(user, "k2", "body", now()).await.unwrap()
    else {
        panic!()
    };
    let result = store.place_order(&order_of(user, &[(&knife, 1)]), Some((&ticket, "{}"))).await;
    assert!(matches!(result, Err(StoreError::InsufficientStock(_))));
    assert_eq!(store.claim_idempotency_key(user, "k2", "body", now()).await.unwrap(), IdempotencyClaim::InProgress);
}

/// An order placed `age` ago (its id and time both that old).
fn order_placed_ago(user_id: UserId, lines: &[(&Product, u64)], age: Duration) -> Order {
    let at = now() - age;
    let ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap();
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000));
    Order { id: OrderId(id), created_at: at, updated_at: at, ..order_of(user_id, lines) }
}

async fn pending_orders_before_a_cutoff_come_oldest_first_from_the_index(store: Arc<dyn Store>) {
    let tray = stocked(&store, "Tray", 100, 100).await;
    let user = UserId::new();
    let old = [Duration::hours(3), Duration::hours(2), Duration::minutes(40)]
        .map(|age| order_placed_ago(user, &[(&tray, 1)], age));
    for order in &old {
        store.place_order(order, None).await.unwrap();
    }
    let fresh = order_of(user, &[(&tray, 1)]);
    store.place_order(&fresh, None).await.unwrap();
    let confirmed_old = order_placed_ago(user, &[(&tray, 1)], Duration::hours(4));
    store.place_order(&confirmed_old, None).await.unwrap();
    store.change_order_status(&confirmed_old, OrderStatus::Confirmed, now(), &admin()).await.unwrap();

    let cutoff = now() - Duration::minutes(30);
    let due = store.pending_orders_before(cutoff, 10).await.unwrap();
    let ids: Vec<OrderId> = due.iter().map(|o| o.id).collect();
    assert_eq!(ids, old.iter().map(|o| o.id).collect::<Vec<_>>(), "pending, older than the cutoff, oldest first");
    assert_eq!(store.pending_orders_before(cutoff, 2).await.unwrap().len(), 2);
}

async fn expiry_racing_a_confirm_lets_exactly_one_win_and_returns_stock_once(store: Arc<dyn Store>) {
    let (expiry, admin) = (Actor::reservation_expiry(), admin());
    for round in 0..6 {
        let vase = stocked(&store, "Vase", 4000, 5).await;
        let order = order_placed_ago(UserId::new(), &[(&vase, 2)], Duration::hours(1));
        store.place_order(&order, None).await.unwrap();
        let (expire, confirm) = tokio::join!(
            store.change_order_status(&order, OrderStatus::Expired, now(), &expiry),
            store.change_order_status(&order, OrderStatus::Confirmed, now(), &admin),
        );
        assert!(expire.is_ok() != confirm.is_ok(), "round {round}: exactly one wins: {expire:?} {confirm:?}");
        let status = store.order_by_id(order.id).await.unwrap().unwrap().status;
        if expire.is_ok() {
            assert_eq!((status, stock_of(&store, &vase).await), (OrderStatus::Expired, 5), "units back once");
            assert!(matches!(confirm, Err(StoreError::StatusChanged)));
        } else {
            assert_eq!((status, stock_of(&store, &vase).await), (OrderStatus::Confirmed, 3), "units stay sold");
        }
        // Expiring twice returns nothing twice.
        let again = store.change_order_status(&order, OrderStatus::Expired, now(), &expiry).await;
        assert!(matches!(again, Err(StoreError::StatusChanged)), "{again:?}");
    }
}

fn payments() -> Actor {
    Actor::System { process: "payments".into() }
}

fn with_payment(order: &Order, status: PaymentStatus, intent: Option<&str>, attempts: u32) -> Order {
    Order {
        payment: Payment { status, intent_id: intent.map(str::to_owned), attempts },
        updated_at: now(),
        ..order.clone()
    }
}

async fn a_payment_change_is_a_compare_and_set_on_status_and_payment(store: Arc<dyn Store>) {
    let cup = stocked(&store, "Cup", 500, 5).await;
    let order = order_of(UserId::new(), &[(&cup, 1)]);
    store.place_order(&order, None).await.unwrap();
    let with_intent = with_payment(&order, PaymentStatus::Unpaid, Some("pi_1"), 1);
    store.update_order(&order, &with_intent, StockMove::Keep, &payments()).await.unwrap();
    assert_eq!(store.order_by_id(order.id).await.unwrap().unwrap().payment, with_intent.payment);
    // A second intent saved from the same read loses: one intent per order.
    let racing = with_payment(&order, PaymentStatus::Unpaid, Some("pi_2"), 1);
    let lost = store.update_order(&order, &racing, StockMove::Keep, &payments()).await;
    assert!(matches!(lost, Err(StoreError::StatusChanged)), "{lost:?}");
    // Paid: confirmed and paid in one write; the same write again loses.
    let paid =
        Order { status: OrderStatus::Confirmed, ..with_payment(&with_intent, PaymentStatus::Paid, Some("pi_1"), 1) };
    store.update_order(&with_intent, &paid, StockMove::Keep, &payments()).await.unwrap();
    let again = store.update_order(&with_intent, &paid, StockMove::Keep, &payments()).await;
    assert!(matches!(again, Err(StoreError::StatusChanged)), "{again:?}");
    let stored = store.order_by_id(order.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.payment.status), (OrderStatus::Confirmed, PaymentStatus::Paid));
    // Cancelling a paid order: stock back and refund owed, one write.
    let cancelled =
        Order { status: OrderStatus::Cancelled, ..with_payment(&paid, PaymentStatus::RefundPending, Some("pi_1"), 1) };
    store.update_order(&paid, &cancelled, StockMove::Release, &payments()).await.unwrap();
    assert_eq!(stock_of(&store, &cup).await, 5);
    let twice = store.update_order(&paid, &cancelled, StockMove::Release, &payments()).await;
    assert!(matches!(twice, Err(StoreError::StatusChanged)), "{twice:?}");
    assert_eq!(stock_of(&store, &cup).await, 5, "the units came back once");
}

async fn a_late_payment_takes_the_units_again_or_nothing(store: Arc<dyn Store>) {
    let (bowl, spoon) = (stocked(&store, "Bowl", 800, 3).await, stocked(&store, "Spoon", 200, 2).await);
    let order = order_of(UserId::new(), &[(&bowl, 2), (&spoon, 2)]);
    store.place_order(&order, None).await.unwrap();
    let expired =
        store.change_order_status(&order, OrderStatus::Expired, now(), &Actor::reservation_expiry()).await.unwrap();
    assert_eq!((stock_of(&store, &bowl).await, stock_of(&store, &spoon).await), (3, 2));
    // Someone buys a spoon meanwhile: the late payment cannot take both.
    store.place_order(&order_of(UserId::new(), &[(&spoon, 1)]), None).await.unwrap();
    let paid = Order { status: OrderStatus::Confirmed, ..with_payment(&expired, PaymentStatus::Paid, Some("pi_1"), 0) };
    let short = store.update_order(&expired, &paid, StockMove::Reserve, &payments()).await;
    assert!(matches!(short, Err(StoreError::InsufficientStock(ref ids)) if ids == &[spoon.id]), "{short:?}");
    assert_eq!((stock_of(&store, &bowl).await, stock_of(&store, &spoon).await), (3, 1), "nothing taken");
    assert_eq!(store.order_by_id(order.id).await.unwrap().unwrap().status, OrderStatus::Expired);
    // With the spoon back, it takes both, in the same write as the payment.
    store.update_product(&restock(&spoon, 2)).await.unwrap();
    store.update_order(&expired, &paid, StockMove::Reserve, &payments()).await.unwrap();
    assert_eq!((stock_of(&store, &bowl).await, stock_of(&store, &spoon).await), (1, 0));
    assert_eq!(store.order_by_id(order.id).await.unwrap().unwrap().payment.status, PaymentStatus::Paid);
}

fn restock(product: &Product, stock: u64) -> shop::store::ProductUpdate {
    shop::store::ProductUpdate {
        id: product.id,
        name: product.name.clone(),
        description: product.description.clone(),
        price: product.price,
        category: product.category.clone(),
        stock: shop::domain::StockChange::Set(stock),
        stock_counters: product.stock_counters,
        updated_at: now(),
    }
}

async fn a_payment_event_is_recorded_once_until_it_expires(store: Arc<dyn Store>) {
    let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    assert!(!store.payment_event_seen(&id, now()).await.unwrap());
    assert!(store.record_payment_event(&id, now() + Duration::days(7)).await.unwrap());
    assert!(!store.record_payment_event(&id, now() + Duration::days(7)).await.unwrap(), "recorded once");
    assert!(store.payment_event_seen(&id, now()).await.unwrap());
    assert!(!store.payment_event_seen(&id, now() + Duration::days(8)).await.unwrap(), "forgotten after");
    // A lease that ran out may be taken again.
    let lease = format!("refund:{id}");
    assert!(store.record_payment_event(&lease, now() - Duration::seconds(1)).await.unwrap());
    assert!(store.record_payment_event(&lease, now() + Duration::seconds(30)).await.unwrap());
}

store_contract!(
    a_payment_change_is_a_compare_and_set_on_status_and_payment,
    a_late_payment_takes_the_units_again_or_nothing,
    a_payment_event_is_recorded_once_until_it_expires,
    pending_orders_before_a_cutoff_come_oldest_first_from_the_index,
    expiry_racing_a_confirm_lets_exactly_one_win_and_returns_stock_once,
    placing_an_order_reserves_every_line_or_nothing,
    concurrent_buyers_never_oversell,
    cancelling_returns_the_stock_once_even_when_cancels_race,
    a_status_change_is_a_compare_and_set,
    a_cancelled_order_whose_product_was_deleted_still_cancels,
    orders_list_newest_first_per_user_and_per_status,
    an_idempotency_key_replays_its_response_and_refuses_another_body,
    a_released_or_abandoned_claim_can_be_taken,
    a_failed_order_leaves_the_key_claimed_but_unanswered,
);

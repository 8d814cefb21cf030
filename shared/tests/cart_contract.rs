//! The cart half of the store port's contract, run against every adapter:
//! compare-and-set on the version, expiry, and checkout as one atomic write
//! with the order it places.

mod common;

use common::stocked;

use std::sync::Arc;

use shop::domain::{Cart, Order, OrderId, OrderItem, OrderSource, OrderStatus, Product, UserId};
use shop::store::{IdempotencyClaim, Store, StoreError};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn month() -> OffsetDateTime {
    now() + Duration::days(30)
}

/// `user`'s cart holding `lines`, saved as its next version.
async fn saved_cart(store: &Arc<dyn Store>, user: UserId, lines: &[(&Product, u64)]) -> Cart {
    let mut cart = store.cart(user, now()).await.unwrap().unwrap_or_else(|| Cart::empty(user));
    for (product, quantity) in lines {
        cart.set_quantity(product, *quantity).unwrap();
    }
    let cart = cart.next_version(now());
    store.save_cart(&cart, month()).await.unwrap();
    cart
}

/// The order a checkout of `cart` would place, at the products' prices.
fn order_of(cart: &Cart, products: &[&Product]) -> Order {
    let items: Vec<OrderItem> = cart
        .lines
        .iter()
        .zip(products)
        .map(|(line, product)| OrderItem {
            product_id: line.product_id,
            product_name: product.name.as_str().to_owned(),
            quantity: line.quantity,
            price_minor: product.price.minor(),
        })
        .collect();
    Order {
        id: OrderId::new(),
        user_id: cart.user_id,
        total_amount: shop::domain::order::order_total(&items).unwrap(),
        items,
        status: OrderStatus::Pending,
        source: OrderSource::Cart,
        payment: Default::default(),
        created_at: now(),
        updated_at: now(),
    }
}

async fn stock_of(store: &Arc<dyn Store>, product: &Product) -> u64 {
    store.product_by_id(product.id).await.unwrap().unwrap().stock
}

async fn a_saved_cart_reads_back_and_each_version_is_a_compare_and_set(store: Arc<dyn Store>) {
    let (user, mug) = (UserId::new(), stocked(&store, "Mug", 950, 5).await);
    assert_eq!(store.cart(user, now()).await.unwrap(), None, "no cart yet");
    let first = saved_cart(&store, user, &[(&mug, 2)]).await;
    assert_eq!(store.cart(user, now()).await.unwrap().as_ref(), Some(&first));
    assert_eq!(first.version, 1);

    // A second writer that read version 0 (or 1) after the first wrote 1 (or 2) loses.
    let stale = Cart::empty(user).next_version(now());
    assert!(matches!(store.save_cart(&stale, month()).await, Err(StoreError::CartChanged)));
    let second = saved_cart(&store, user, &[(&mug, 3)]).await;
    let mut racing = first.clone();
    racing.lines.clear();
    let racing = racing.next_version(now());
    assert_eq!(racing.version, 2);
    assert!(matches!(store.save_cart(&racing, month()).await, Err(StoreError::CartChanged)));
    assert_eq!(store.cart(user, now()).await.unwrap().as_ref(), Some(&second), "the loser changed nothing");
}

async fn carts_belong_to_one_user_each(store: Arc<dyn Store>) {
    let (ada, bob, mug) = (UserId::new(), UserId::new(), stocked(&store, "Mug", 950, 5).await);
    saved_cart(&store, ada, &[(&mug, 2)]).await;
    assert_eq!(store.cart(bob, now()).await.unwrap(), None);
    store.delete_cart(bob, None).await.unwrap();
    assert!(store.cart(ada, now()).await.unwrap().is_some(), "deleting bob's cart leaves ada's");
}

async fn deleting_a_cart_honours_its_version(store: Arc<dyn Store>) {
    let (user, mug) = (UserId::new(), stocked(&store, "Mug", 950, 5).await);
    store.delete_cart(user, None).await.unwrap();
    store.delete_cart(user, Some(0)).await.unwrap();
    let cart = saved_cart(&store, user, &[(&mug, 1)]).await;
    assert!(matches!(store.delete_cart(user, Some(cart.version + 1)).await, Err(StoreError::CartChanged)));
    assert!(matches!(store.delete_cart(user, Some(0)).await, Err(StoreError::CartChanged)));
    store.delete_cart(user, Some(cart.version)).await.unwrap();
    assert_eq!(store.cart(user, now()).await.unwrap(), None);
}

async fn an_expired_cart_reads_as_none_and_can_be_started_again(store: Arc<dyn Store>) {
    let (user, mug) = (UserId::new(), stocked(&store, "Mug", 950, 5).await);
    let mut cart = Cart::empty(user);
    cart.set_quantity(&mug, 1).unwrap();
    let cart = cart.next_version(now());
    store.save_cart(&cart, now() + Duration::seconds(60)).await.unwrap();
    let later = now() + Duration::seconds(61);
    assert_eq!(store.cart(user, later).await.unwrap(), None, "expired, whether or not it was deleted yet");
    assert!(store.cart(user, now()).await.unwrap().is_some(), "still there a minute before");
    // The sweep deletes what expired (DynamoDB's TTL does that in AWS).
    let swept = store.sweep_expired_carts(later, 100).await.unwrap();
    assert!(swept <= 1);
    assert_eq!(store.sweep_expired_carts(now(), 100).await.unwrap(), 0, "nothing live is swept");
}

async fn a_cart_past_its_expiry_is_replaced_by_a_new_first_version(store: Arc<dyn Store>) {
    let (user, mug) = (UserId::new(), stocked(&store, "Mug", 950, 5).await);
    let mut old = Cart::empty(user);
    old.set_quantity(&mug, 4).unwrap();
    let long_ago = now() - Duration::days(40);
    store.save_cart(&old.next_version(long_ago), long_ago + Duration::days(30)).await.unwrap();
    assert_eq!(store.cart(user, now()).await.unwrap(), None);
    let fresh = saved_cart(&store, user, &[(&mug, 1)]).await;
    assert_eq!((fresh.version, fresh.lines[0].quantity), (1, 1), "a new cart, not the expired one");
}

async fn checkout_reserves_places_and_removes_the_cart_in_one_write(store: Arc<dyn Store>) {
    let user = UserId::new();
    let (mug, pan) = (stocked(&store, "Mug", 950, 5).await, stocked(&store, "Pan", 2500, 1).await);
    let cart = saved_cart(&store, user, &[(&mug, 2), (&pan, 1)]).await;
    let order = order_of(&cart, &[&mug, &pan]);
    store.check_out(&order, cart.version, None).await.unwrap();
    assert_eq!(store.order_by_id(order.id).await.unwrap().as_ref(), Some(&order));
    assert_eq!((stock_of(&store, &mug).await, stock_of(&store, &pan).await), (3, 0));
    assert_eq!(store.cart(user, now()).await.unwrap(), None, "the cart is gone");
    // The same cart version again finds no cart: nothing is placed twice.
    let again = order_of(&cart, &[&mug, &pan]);
    assert!(matches!(store.check_out(&again, cart.version, None).await, Err(StoreError::CartChanged)));
    assert_eq!(stock_of(&store, &mug).await, 3);
}

async fn checkout_short_of_stock_reserves_nothing_and_keeps_the_cart(store: Arc<dyn Store>) {
    let user = UserId::new();
    let (mug, pan) = (stocked(&store, "Mug", 950, 5).await, stocked(&store, "Pan", 2500, 1).await);
    let cart = saved_cart(&store, user, &[(&mug, 2), (&pan, 2)]).await;
    let order = order_of(&cart, &[&mug, &pan]);
    let result = store.check_out(&order, cart.version, None).await;
    assert!(matches!(result, Err(StoreError::InsufficientStock(ref short)) if short == &[pan.id]), "{result:?}");
    assert_eq!((stock_of(&store, &mug).await, stock_of(&store, &pan).await), (5, 1), "nothing reserved");
    assert!(store.order_by_id(order.id).await.unwrap().is_none());
    assert_eq!(store.cart(user, now()).await.unwrap().as_ref(), Some(&cart), "the cart is kept");
}

async fn checkout_of_a_changed_cart_writes_nothing(store: Arc<dyn Store>) {
    let user = UserId::new();
    let mug = stocked(&store, "Mug", 950, 5).await;
    let read = saved_cart(&store, user, &[(&mug, 2)]).await;
    let edited = saved_cart(&store, user, &[(&mug, 3)]).await;
    let order = order_of(&read, &[&mug]);
    assert!(matches!(store.check_out(&order, read.version, None).await, Err(StoreError::CartChanged)));
    assert_eq!(stock_of(&store, &mug).await, 5);
    assert!(store.order_by_id(order.id).await.unwrap().is_none());
    assert_eq!(store.cart(user, now()).await.unwrap().as_ref(), Some(&edited));
}

async fn checkout_completes_its_idempotency_claim_in_the_same_write(store: Arc<dyn Store>) {
    let user = UserId::new();
    let mug = stocked(&store, "Mug", 950, 5).await;
    let cart = saved_cart(&store, user, &[(&mug, 1)]).await;
    let IdempotencyClaim::Acquired(ticket) =
        store.claim_idempotency_key(user, "checkout-1", "checkout", now()).await.unwrap()
    else {
        panic!("a fresh key is ours")
    };
    let order = order_of(&cart, &[&mug]);
    store.check_out(&order, cart.version, Some((&ticket, "{\"id\":\"first\"}"))).await.unwrap();
    let replay = store.claim_idempotency_key(user, "checkout-1", "checkout", now()).await.unwrap();
    assert_eq!(replay, IdempotencyClaim::Replay { status: 201, body: "{\"id\":\"first\"}".into() });
}

/// Two tabs check out the same cart at once: exactly one order.
async fn racing_checkouts_of_one_cart_place_one_order(store: Arc<dyn Store>) {
    let user = UserId::new();
    let mug = stocked(&store, "Mug", 950, 50).await;
    let cart = saved_cart(&store, user, &[(&mug, 2)]).await;
    let attempts = (0..8).map(|_| {
        let (store, order) = (Arc::clone(&store), order_of(&cart, &[&mug]));
        tokio::spawn(async move { store.check_out(&order, cart.version, None).await })
    });
    let results: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let placed = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(placed, 1, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        // The losers saw the cart gone, or (DynamoDB) only a conflict with the winner's transaction.
        assert!(matches!(result, Err(StoreError::CartChanged | StoreError::Unavailable(_))), "{result:?}");
    }
    assert_eq!(stock_of(&store, &mug).await, 48);
}

/// 20 shoppers, a cart each, racing for 5 units: exactly 5 orders, the
/// losers' carts intact, never oversold.
async fn shoppers_racing_for_the_last_units_never_oversell(store: Arc<dyn Store>) {
    let lamp = stocked(&store, "Lamp", 2499, 5).await;
    let mut carts = Vec::new();
    for _ in 0..20 {
        carts.push(saved_cart(&store, UserId::new(), &[(&lamp, 1)]).await);
    }
    let attempts = carts.iter().map(|cart| {
        let (store, cart, order) = (Arc::clone(&store), cart.clone(), order_of(cart, &[&lamp]));
        tokio::spawn(async move { (cart.user_id, store.check_out(&order, cart.version, None).await) })
    });
    let results: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|(_, r)| r.is_ok()).count(), 5, "{results:?}");
    assert_eq!(stock_of(&store, &lamp).await, 0);
    for (user, result) in &results {
        let cart = store.cart(*user, now()).await.unwrap();
        match result {
            Ok(()) => assert_eq!(cart, None),
            Err(err) => {
                assert!(matches!(err, StoreError::InsufficientStock(_)), "{err:?}");
                assert_eq!(cart.map(|c| c.lines.len()), Some(1), "a loser keeps the cart");
            }
        }
    }
}

store_contract!(
    a_saved_cart_reads_back_and_each_version_is_a_compare_and_set,
    carts_belong_to_one_user_each,
    deleting_a_cart_honours_its_version,
    an_expired_cart_reads_as_none_and_can_be_started_again,
    a_cart_past_its_expiry_is_replaced_by_a_new_first_version,
    checkout_reserves_places_and_removes_the_cart_in_one_write,
    checkout_short_of_stock_reserves_nothing_and_keeps_the_cart,
    checkout_of_a_changed_cart_writes_nothing,
    checkout_completes_its_idempotency_claim_in_the_same_write,
    racing_checkouts_of_one_cart_place_one_order,
    shoppers_racing_for_the_last_units_never_oversell,
);

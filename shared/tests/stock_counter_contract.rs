//! Stock spread over several counters, against every adapter: the total
//! stays exact whatever order, cancel, admin change or re-spread races it.

mod common;

use common::counted;

use std::sync::Arc;

use shop::domain::Role;
use shop::domain::{Order, OrderStatus, Product, StockChange, UserId};
use shop::events::Actor;
use shop::store::{ProductUpdate, Store, StoreError};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn admin() -> Actor {
    Actor::User { user_id: UserId::new(), role: Role::Admin }
}

fn order_of(product: &Product, quantity: u64) -> Order {
    common::order_of(UserId::new(), &[(product, quantity)])
}

fn change(product: &Product, stock: StockChange, counters: u16) -> ProductUpdate {
    common::product_update(product, stock, counters)
}

async fn stored(store: &Arc<dyn Store>, product: &Product) -> Product {
    store.product_by_id(product.id).await.unwrap().unwrap()
}

async fn a_counted_product_reads_its_total_and_its_buyers_never_oversell(store: Arc<dyn Store>) {
    let tee = counted(&store, "Tee", 1500, 10, 4).await;
    let read = stored(&store, &tee).await;
    assert_eq!((read.stock, read.stock_counters), (10, 4));
    let attempts = (0..30).map(|_| {
        let (store, order) = (Arc::clone(&store), order_of(&tee, 1));
        async move { store.place_order(&order, None).await }
    });
    let results = futures::future::join_all(attempts).await;
    let placed = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(StoreError::InsufficientStock(_)))).count();
    assert_eq!((placed, refused), (10, 20), "{results:?}");
    assert_eq!(stored(&store, &tee).await.stock, 0);
}

async fn a_quantity_no_counter_holds_alone_is_taken_from_several_and_comes_back_whole(store: Arc<dyn Store>) {
    // 10 over 4 counters: 3, 3, 2, 2.
    let cap = counted(&store, "Cap", 900, 10, 4).await;
    let big = order_of(&cap, 9);
    store.place_order(&big, None).await.unwrap();
    assert_eq!(stored(&store, &cap).await.stock, 1);
    let short = store.place_order(&order_of(&cap, 2), None).await;
    assert!(matches!(short, Err(StoreError::InsufficientStock(ref ids)) if ids == &[cap.id]), "{short:?}");
    store.change_order_status(&big, OrderStatus::Cancelled, now(), &admin()).await.unwrap();
    assert_eq!(stored(&store, &cap).await.stock, 10, "all nine back");
    store.place_order(&order_of(&cap, 10), None).await.unwrap();
    assert_eq!(stored(&store, &cap).await.stock, 0);
}

async fn admin_changes_keep_the_total_exact_over_any_number_of_counters(store: Arc<dyn Store>) {
    let scarf = counted(&store, "Scarf", 2000, 10, 4).await;
    let update = |stock, counters| change(&scarf, stock, counters);
    let after = store.update_product(&update(StockChange::Adjust(-3), 4)).await.unwrap();
    assert_eq!((after.stock, after.stock_counters), (7, 4));
    assert_eq!(store.update_product(&update(StockChange::Adjust(5), 4)).await.unwrap().stock, 12);
    let one = store.update_product(&update(StockChange::Keep, 1)).await.unwrap();
    assert_eq!((one.stock, one.stock_counters), (12, 1), "back on the product item");
    store.place_order(&order_of(&scarf, 2), None).await.unwrap();
    let eight = store.update_product(&update(StockChange::Keep, 8)).await.unwrap();
    assert_eq!((eight.stock, eight.stock_counters), (10, 8));
    assert_eq!(stored(&store, &scarf).await.stock, 10);
    assert_eq!(store.update_product(&update(StockChange::Set(3), 8)).await.unwrap().stock, 3);
    let below = store.update_product(&update(StockChange::Adjust(-4), 8)).await;
    assert!(matches!(below, Err(StoreError::InsufficientStock(_))), "{below:?}");
    let above = store.update_product(&update(StockChange::Adjust(1_000_000_000), 8)).await;
    assert!(matches!(above, Err(StoreError::StockAboveMaximum)), "{above:?}");
    assert_eq!(stored(&store, &scarf).await.stock, 3, "refused changes wrote nothing");
    store.delete_product(scarf.id).await.unwrap();
    assert!(store.product_by_id(scarf.id).await.unwrap().is_none());
    let gone = store.place_order(&order_of(&scarf, 1), None).await;
    assert!(matches!(gone, Err(StoreError::InsufficientStock(_))), "{gone:?}");
}

async fn orders_racing_a_respread_lose_no_unit(store: Arc<dyn Store>) {
    let mug = counted(&store, "Mug", 1200, 40, 4).await;
    let orders = (0..20).map(|_| {
        let (store, order) = (Arc::clone(&store), order_of(&mug, 1));
        async move { store.place_order(&order, None).await.is_ok() }
    });
    let respread = {
        let store = Arc::clone(&store);
        let update = change(&mug, StockChange::Keep, 2);
        async move { store.update_product(&update).await }
    };
    let (placed, respread) = futures::join!(futures::future::join_all(orders), respread);
    let placed = placed.iter().filter(|ok| **ok).count() as u64;
    // The re-spread may give up (a 429) under a stream of orders; it never
    // half-applies.
    assert!(matches!(respread, Ok(_) | Err(StoreError::Contended(_))), "{respread:?}");
    assert_eq!(placed, 20, "every order had units");
    assert_eq!(stored(&store, &mug).await.stock, 40 - placed);
}

async fn a_late_payment_takes_a_counted_products_units_again(store: Arc<dyn Store>) {
    let pin = counted(&store, "Pin", 300, 2, 2).await;
    let order = order_of(&pin, 2);
    store.place_order(&order, None).await.unwrap();
    let expired = store.change_order_status(&order, OrderStatus::Expired, now(), &admin()).await.unwrap();
    assert_eq!(stored(&store, &pin).await.stock, 2);
    let paid = Order { status: OrderStatus::Confirmed, updated_at: now(), ..expired.clone() };
    store.update_order(&expired, &paid, shop::domain::payment::StockMove::Reserve, &admin()).await.unwrap();
    assert_eq!(stored(&store, &pin).await.stock, 0);
}

store_contract!(
    a_counted_product_reads_its_total_and_its_buyers_never_oversell,
    a_quantity_no_counter_holds_alone_is_taken_from_several_and_comes_back_whole,
    admin_changes_keep_the_total_exact_over_any_number_of_counters,
    orders_racing_a_respread_lose_no_unit,
    a_late_payment_takes_a_counted_products_units_again,
);

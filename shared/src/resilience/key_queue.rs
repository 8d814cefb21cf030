//! Orders of one product queue in the process, not in the store.
//!
//! Two hundred buyers of one product at once, each sending its stock
//! transaction, queue on that one item inside the store: on DynamoDB Local
//! the transactions slowed past the attempt timeout, the timeouts opened
//! the store's breaker, and every route of the shop answered 503. Here a
//! product's orders take a place in a small queue first (a few at a time
//! per product and process), then read the stock and, when it is short,
//! answer 409 without a transaction (the sold-out fast path: a strongly
//! consistent read, so a restock or a cancellation is seen at once).
//!
//! Once a product is seen sold out here (its stock read at zero inside
//! the queue, or its transaction refused for stock), the buyers still
//! queued behind get their 409 without even that read, for
//! [`SOLD_OUT_FOR`]: a restock or a cancellation through this process
//! clears the mark at once ([`KeyQueues::restocked`]), through another
//! process within that time.
//!
//! A request that gets no turn within its time is told why: behind many
//! quick turns, the product is busy (429); behind a turn that has waited
//! on the store for over a second, the store is slow or down (503, as any
//! call to it would answer).
//!
//! A product whose stock is spread over counters (see
//! `store::dynamodb::stock`) lets one order a counter in at once: its
//! orders write different items, so they do not conflict.
//!
//! Products share 256 queues by hash, so memory stays fixed
//! whatever the catalog; two products sharing one only queue a little
//! longer. A Lambda instance serves one request at a time, so there the
//! queue never waits: across instances, contention on one item comes back
//! from DynamoDB as transaction conflicts or key-range throttling, which
//! the adapter reports as [`crate::store::StoreError::Contended`] (429,
//! never counted against the store's breaker).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::deadline;
use crate::domain::ProductId;

/// Queues, each shared by the products that hash to it.
const STRIPES: usize = 256;

/// Orders of one product in flight at once, per process: one, so that they
/// never conflict with each other in the store (a conflict is retried,
/// then a 429); one per counter for a product with stock counters.
pub const PER_PRODUCT: usize = 1;

/// Places in each queue: a product of one counter takes them all, one of
/// `n` counters `LANES / n` of them (at least one).
const LANES: u32 = crate::domain::catalog::MAX_STOCK_COUNTERS as u32;

/// How long a sold-out mark answers for the store.
pub const SOLD_OUT_FOR: Duration = Duration::from_secs(1);

/// What a request keeps back from its wait in a queue for its read and
/// its transaction.
const QUEUE_MARGIN: std::time::Duration = std::time::Duration::from_millis(300);

/// A turn held longer than this means the store is slow, not the product
/// busy: a read and a transaction take milliseconds.
const SLOW_TURN: Duration = Duration::from_secs(1);

/// Why a request got no turn in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoTurn {
    /// Many quick turns ahead of it: the product is busy (a 429).
    Busy,
    /// The turn ahead has been waiting on the store for over a second: the
    /// store is slow or down (a 503, as any call to it would say).
    StoreSlow,
}

pub struct KeyQueues {
    stripes: Vec<Semaphore>,
    /// When the stripe's turns began, from the first taken while none was
    /// held to the next release (`None`: none held since).
    turn_began: Vec<Mutex<Option<Instant>>>,
    /// Products seen sold out: when, and their names (what the 409 says).
    sold_out: Mutex<HashMap<ProductId, (Instant, String)>>,
    /// Products read with several stock counters, and how many.
    counters: Mutex<HashMap<ProductId, u16>>,
}

impl Default for KeyQueues {
    fn default() -> Self {
        KeyQueues {
            stripes: (0..STRIPES).map(|_| Semaphore::new(LANES as usize)).collect(),
            turn_began: (0..STRIPES).map(|_| Mutex::new(None)).collect(),
            sold_out: Mutex::new(HashMap::new()),
            counters: Mutex::new(HashMap::new()),
        }
    }
}

/// Places held in the queues of an order's products, released on drop.
pub struct Held<'a> {
    queues: &'a KeyQueues,
    stripes: Vec<usize>,
    _permits: Vec<SemaphorePermit<'a>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        for &stripe in &self.stripes {
            *self.queues.turn_began[stripe].lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

impl KeyQueues {
    /// Waits for a place in the queue of each of `products` (in one fixed
    /// order, so two orders of the same products cannot hold one each and
    /// wait for the other), for at most what is left of the request but
    /// 300 ms: a request that waited its whole time would have
    /// none left to read and write.
    /// A request that got no turn is told why ([`NoTurn`]).
    pub async fn hold(&self, products: impl IntoIterator<Item = ProductId>) -> Result<Held<'_>, NoTurn> {
        // Each stripe once, taking the most places any of its products needs.
        let mut stripes: Vec<(usize, u32)> = products.into_iter().map(|p| (stripe_of(p), self.places(p))).collect();
        stripes.sort_unstable_by_key(|&(stripe, places)| (stripe, std::cmp::Reverse(places)));
        stripes.dedup_by_key(|&mut (stripe, _)| stripe);
        let mut held = Held { queues: self, stripes: Vec::with_capacity(stripes.len()), _permits: Vec::new() };
        for (stripe, places) in stripes {
            let cap = deadline::remaining().map(|left| left.saturating_sub(QUEUE_MARGIN));
            let Ok(permit) = deadline::bounded(cap, self.stripes[stripe].acquire_many(places)).await else {
                let began = *self.turn_began[stripe].lock().unwrap_or_else(|e| e.into_inner());
                return Err(match began {
                    Some(began) if began.elapsed() > SLOW_TURN => NoTurn::StoreSlow,
                    _ => NoTurn::Busy,
                });
            };
            held._permits.push(permit.expect("the queues are never closed"));
            self.turn_began[stripe].lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Instant::now);
            held.stripes.push(stripe);
        }
        Ok(held)
    }
}

impl KeyQueues {
    /// What a strongly consistent read of `product` says: sold out when its
    /// stock is zero, and how many counters hold it.
    pub fn note_stock(&self, product: &crate::domain::Product) {
        if product.stock == 0 {
            self.sold_out(product.id, product.name.as_str());
        }
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if product.stock_counters > 1 {
            if counters.len() >= 4 * STRIPES && !counters.contains_key(&product.id) {
                counters.clear();
            }
            counters.insert(product.id, product.stock_counters);
        } else {
            counters.remove(&product.id);
        }
    }

    /// The places one order of `product` takes in its queue.
    fn places(&self, product: ProductId) -> u32 {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let lanes = counters.get(&product).map_or(1, |&n| u32::from(n).clamp(1, LANES));
        LANES / lanes
    }

    /// Marks `product` (named `name`) sold out: its stock was read at zero.
    pub fn sold_out(&self, product: ProductId, name: &str) {
        let mut marks = self.sold_out.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Fixed memory: stale marks go whenever the map grows.
        if marks.len() >= 4 * STRIPES {
            marks.retain(|_, (at, _)| now.duration_since(*at) < SOLD_OUT_FOR);
        }
        marks.insert(product, (now, name.to_owned()));
    }

    /// The first of `products` seen sold out within [`SOLD_OUT_FOR`], with
    /// its name.
    pub fn any_sold_out(&self, products: impl IntoIterator<Item = ProductId>) -> Option<(ProductId, String)> {
        let marks = self.sold_out.lock().unwrap_or_else(|e| e.into_inner());
        products.into_iter().find_map(|product| match marks.get(&product) {
            Some((at, name)) if at.elapsed() < SOLD_OUT_FOR => Some((product, name.clone())),
            _ => None,
        })
    }

    /// `product`'s stock came back (a cancellation, an expiry, an admin's
    /// change): buyers read it again.
    pub fn restocked(&self, product: ProductId) {
        self.sold_out.lock().unwrap_or_else(|e| e.into_inner()).remove(&product);
    }
}

fn stripe_of(product: ProductId) -> usize {
    // UUID v7: the low bits are random.
    (product.0.as_u128() % STRIPES as u128) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn at_most_per_product_orders_of_one_product_run_at_once() {
        let queues = Arc::new(KeyQueues::default());
        let product = ProductId::new();
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let buyers = (0..20).map(|_| {
            let (queues, running, most) = (Arc::clone(&queues), Arc::clone(&running), Arc::clone(&most));
            tokio::spawn(async move {
                let _held = queues.hold([product]).await.unwrap();
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for buyer in buyers.collect::<Vec<_>>() {
            buyer.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), PER_PRODUCT);
    }

    #[tokio::test]
    async fn a_product_of_eight_counters_lets_eight_orders_run_at_once() {
        let queues = Arc::new(KeyQueues::default());
        let mut product = crate::domain::Product {
            id: ProductId::new(),
            name: crate::domain::ProductName::parse("Flash").unwrap(),
            description: Default::default(),
            price: crate::domain::Money::from_minor(100),
            category: crate::domain::CategoryName::parse("Sale").unwrap(),
            stock: 100,
            stock_counters: 8,
            created_at: time::OffsetDateTime::now_utc(),
            updated_at: time::OffsetDateTime::now_utc(),
        };
        queues.note_stock(&product);
        let held: Vec<_> = futures::future::join_all((0..8).map(|_| queues.hold([product.id]))).await;
        assert!(held.iter().all(Result::is_ok), "eight turns at once");
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        assert!(deadline::within(deadline, queues.hold([product.id])).await.is_err(), "not a ninth");
        drop(held);
        product.stock_counters = 1;
        queues.note_stock(&product);
        let _one = queues.hold([product.id]).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        assert!(deadline::within(deadline, queues.hold([product.id])).await.is_err(), "one again");
    }

    #[tokio::test]
    async fn orders_naming_the_same_products_in_any_order_never_wait_for_each_other_forever() {
        let queues = Arc::new(KeyQueues::default());
        let (a, b) = (ProductId::new(), ProductId::new());
        let orders = (0..40).map(|n| {
            let queues = Arc::clone(&queues);
            tokio::spawn(async move {
                let products = if n % 2 == 0 { [a, b, a] } else { [b, a, b] };
                let _held = queues.hold(products).await.unwrap();
                tokio::task::yield_now().await;
            })
        });
        let all = futures::future::join_all(orders);
        tokio::time::timeout(Duration::from_secs(10), all).await.expect("no deadlock");
    }

    #[test]
    fn a_sold_out_mark_answers_until_a_restock_or_for_a_second() {
        let queues = KeyQueues::default();
        let (a, b) = (ProductId::new(), ProductId::new());
        assert_eq!(queues.any_sold_out([a, b]), None);
        queues.sold_out(b, "Flash");
        assert_eq!(queues.any_sold_out([a, b]), Some((b, "Flash".to_owned())));
        queues.restocked(b);
        assert_eq!(queues.any_sold_out([a, b]), None);
        queues.sold_out.lock().unwrap().insert(a, (Instant::now() - SOLD_OUT_FOR, "Old".into()));
        assert_eq!(queues.any_sold_out([a]), None, "an old mark asks the store again");
    }

    #[tokio::test]
    async fn a_wait_past_the_requests_deadline_gives_up() {
        let queues = KeyQueues::default();
        let product = ProductId::new();
        let mut full = Vec::new();
        while full.len() < PER_PRODUCT {
            full.push(queues.hold([product]).await.unwrap());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        let waited = deadline::within(deadline, queues.hold([product])).await;
        assert_eq!(waited.err(), Some(NoTurn::Busy), "a turn just begun: the product is busy");
        // A turn held for over a second: the store is slow, not the product.
        *queues.turn_began[stripe_of(product)].lock().unwrap() = Some(Instant::now() - SLOW_TURN * 2);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        let waited = deadline::within(deadline, queues.hold([product])).await;
        assert_eq!(waited.err(), Some(NoTurn::StoreSlow));
        drop(full);
        assert!(queues.turn_began[stripe_of(product)].lock().unwrap().is_none(), "released with the turn");
    }
}

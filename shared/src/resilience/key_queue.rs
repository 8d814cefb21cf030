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
//! Products share [`STRIPES`] queues by hash, so memory stays fixed
//! whatever the catalog; two products sharing one only queue a little
//! longer. A Lambda instance serves one request at a time, so there the
//! queue never waits: across instances, contention on one item comes back
//! from DynamoDB as transaction conflicts or key-range throttling, which
//! the adapter reports as [`crate::store::StoreError::Contended`] (429,
//! never counted against the store's breaker).

use tokio::sync::{Semaphore, SemaphorePermit};

use super::deadline::{self, DeadlinePassed};
use crate::domain::ProductId;

/// Queues, each shared by the products that hash to it.
const STRIPES: usize = 256;

/// Orders of one product in flight at once, per process.
pub const PER_PRODUCT: usize = 4;

/// What a request keeps back from its wait in a queue for its read and
/// its transaction.
const QUEUE_MARGIN: std::time::Duration = std::time::Duration::from_millis(300);

pub struct KeyQueues {
    stripes: Vec<Semaphore>,
}

impl Default for KeyQueues {
    fn default() -> Self {
        KeyQueues { stripes: (0..STRIPES).map(|_| Semaphore::new(PER_PRODUCT)).collect() }
    }
}

/// Places held in the queues of an order's products, released on drop.
pub struct Held<'a> {
    _permits: Vec<SemaphorePermit<'a>>,
}

impl KeyQueues {
    /// Waits for a place in the queue of each of `products` (in one fixed
    /// order, so two orders of the same products cannot hold one each and
    /// wait for the other), for at most what is left of the request but
    /// [`QUEUE_MARGIN`]: a request that waited its whole time would have
    /// none left to read and write.
    pub async fn hold(&self, products: impl IntoIterator<Item = ProductId>) -> Result<Held<'_>, DeadlinePassed> {
        let mut stripes: Vec<usize> = products.into_iter().map(stripe_of).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut permits = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            let cap = deadline::remaining().map(|left| left.saturating_sub(QUEUE_MARGIN));
            let permit = deadline::bounded(cap, self.stripes[stripe].acquire()).await?;
            permits.push(permit.expect("the queues are never closed"));
        }
        Ok(Held { _permits: permits })
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

    #[tokio::test]
    async fn a_wait_past_the_requests_deadline_gives_up() {
        let queues = KeyQueues::default();
        let product = ProductId::new();
        let _full = queues.hold([product]).await.unwrap();
        let mut others = Vec::new();
        for _ in 1..PER_PRODUCT {
            others.push(queues.hold([product]).await.unwrap());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        let waited = deadline::within(deadline, queues.hold([product])).await;
        assert!(waited.is_err());
    }
}

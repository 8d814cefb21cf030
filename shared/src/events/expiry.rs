//! Reservation expiry: a pending order older than `ORDER_RESERVATION_SECONDS`
//! moves to `expired` and its units go back to stock, in one atomic write
//! conditioned on the order still being pending. A confirm or cancel racing
//! the expiry is the same compare-and-set: exactly one of them wins, and
//! stock is returned at most once. `order.expired` then comes from the
//! change feed like every other event.
//!
//! In AWS the `orders-expire` function runs this every minute; locally
//! `shop-local` runs it on a timer.

use std::time::Duration;

use time::OffsetDateTime;

use super::envelope::Actor;
use crate::app::App;
use crate::domain::OrderStatus;
use crate::handlers::products::invalidate_product;
use crate::store::StoreError;

/// Orders read per index query.
const PAGE: usize = 25;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Orders moved to `expired`.
    pub expired: usize,
    /// Orders that someone confirmed or cancelled first.
    pub lost_races: usize,
}

/// Expires up to `max` pending orders placed more than `reservation` before
/// `now`, oldest first. Stops early when a page expires nothing (the index
/// can lag the table by a moment: what it still shows as pending may not
/// be, and the next sweep sees it settled).
pub async fn sweep(app: &App, now: OffsetDateTime, reservation: Duration, max: usize) -> Result<Sweep, StoreError> {
    let cutoff = now - reservation;
    let by = Actor::reservation_expiry();
    let mut result = Sweep::default();
    while result.expired + result.lost_races < max {
        let due = app.store.pending_orders_before(cutoff, PAGE.min(max - result.expired - result.lost_races)).await?;
        if due.is_empty() {
            break;
        }
        let mut expired_here = 0;
        for order in due.iter().filter(|order| order.status == OrderStatus::Pending && order.created_at < cutoff) {
            match app.store.change_order_status(order, OrderStatus::Expired, now, &by).await {
                Ok(_) => {
                    expired_here += 1;
                    for line in &order.items {
                        invalidate_product(app, line.product_id).await;
                    }
                }
                Err(StoreError::StatusChanged | StoreError::NotFound) => result.lost_races += 1,
                Err(err) => {
                    tracing::warn!(expired = result.expired + expired_here, error = %err, "reservation expiry stopped early");
                    return Err(err);
                }
            }
        }
        result.expired += expired_here;
        if expired_here == 0 {
            break;
        }
    }
    if result.expired > 0 {
        tracing::info!(expired = result.expired, lost_races = result.lost_races, "expired unpaid reservations");
    }
    Ok(result)
}

/// How often `shop-local` sweeps: often enough that an order expires
/// within a tenth of its reservation (at least every second, at most every
/// minute, as the function's schedule in AWS).
pub fn local_interval(reservation: Duration) -> Duration {
    (reservation / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

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
use crate::handlers::products::invalidate_stock;
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
            if paid_meanwhile(app, order).await {
                result.lost_races += 1;
                continue;
            }
            match app.store.change_order_status(order, OrderStatus::Expired, now, &by).await {
                Ok(_) => {
                    expired_here += 1;
                    for line in &order.items {
                        app.order_queues.restocked(line.product_id);
                        invalidate_stock(app, line.product_id).await;
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

/// With payments on, the order's open PaymentIntent is cancelled before
/// the order expires, so it can no longer be paid. True when Stripe refused
/// because it was paid meanwhile (a lost or late webhook): the payment was
/// applied instead, and the order does not expire. Stripe unreachable
/// does not hold the stock hostage: the order expires, and a payment that
/// still lands takes the units again or is refunded in full.
async fn paid_meanwhile(app: &App, order: &crate::domain::Order) -> bool {
    let (Some(payments), Some(intent)) = (&app.payments, order.payment.intent_id.as_deref()) else { return false };
    if order.payment.status.money_taken() {
        return true;
    }
    match Box::pin(crate::payments::cancel_intent(app, payments, order, intent)).await {
        Ok(Some(_)) => {
            tracing::info!(order_id = %order.id, intent, "paid before its reservation ran out: applied, not expired");
            true
        }
        Ok(None) => false,
        Err(err) => {
            tracing::warn!(order_id = %order.id, intent, error = %err, "could not cancel the PaymentIntent; expiring all the same");
            false
        }
    }
}

/// How often `shop-local` sweeps: often enough that an order expires
/// within a tenth of its reservation (at least every second, at most every
/// minute, as the function's schedule in AWS).
pub fn local_interval(reservation: Duration) -> Duration {
    (reservation / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

//! Payments through Stripe: one PaymentIntent per order, made by the
//! server for the amount it computed; the signed webhook, a re-read on
//! `GET /api/orders/{id}/payment` and the reservation expiry's check all
//! apply what Stripe says through [`crate::domain::payment::decide`].
//!
//! The invariant, on Stripe and on the test server alike: at most one live
//! PaymentIntent per order. The order names the current one, saved with a
//! condition on the one it replaces; an intent made by a losing race is
//! cancelled; a declined one may be cancelled and replaced; a success on
//! any intent of the order is applied once, and money taken for an order
//! that will not ship is refunded, never more than was paid.

pub mod secrets;
pub mod signature;
pub mod stripe;

use std::sync::Arc;

use time::OffsetDateTime;

use self::stripe::{PaymentIntent, StripeClient, StripeError};
use crate::app::App;
use crate::domain::payment::{IntentState, PaymentDecision, StockMove, decide, refund_instead};
use crate::domain::{Currency, Order, OrderId, Payment, PaymentStatus};
use crate::events::Actor;
use crate::resilience::CircuitBreaker;
use crate::store::StoreError;

/// How long an applied Stripe event id is remembered: Stripe retries a
/// delivery for three days.
pub const EVENT_MEMORY: time::Duration = time::Duration::days(7);

/// Payments as configured (present only with `PAYMENT_PROVIDER=stripe`).
pub struct Payments {
    pub stripe: StripeClient,
    pub webhook_secret: String,
    pub currency: Currency,
}

impl Payments {
    pub fn new(
        api_base: &str,
        secret_key: &str,
        webhook_secret: &str,
        currency: Currency,
        breaker: Arc<CircuitBreaker>,
    ) -> Result<Self, String> {
        Ok(Payments {
            stripe: StripeClient::new(api_base, secret_key, breaker)?,
            webhook_secret: webhook_secret.to_owned(),
            currency,
        })
    }
}

/// Why a payment step failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The order is not in a state this step applies to (a 409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process is refunding this payment right now; its lease
    /// runs out after [`REFUND_LEASE`] if it died.
    #[error("a refund of this payment is in progress")]
    RefundInProgress,
}

/// How long one process holds the right to refund a payment: Stripe's
/// idempotency key makes two concurrent refunds one on Stripe itself, but
/// not on every server (the test server ignores it), so refunds of one
/// intent are serialised through the store. A holder that dies frees it
/// when the lease runs out; the next one subtracts what was refunded.
pub const REFUND_LEASE: time::Duration = time::Duration::seconds(30);

/// Who the payment code writes as, in the order's `changedBy`.
fn payments_actor() -> Actor {
    Actor::System { process: "payments".into() }
}

/// The order's PaymentIntent: the current one, or a new one when it has
/// none or its current one was declined (a declined intent is cancelled
/// and replaced: not every Stripe server lets it be retried). With
/// `payment_method`, the intent is confirmed server-side with it. Answers
/// the order as it stands after, and the intent.
pub async fn start(
    app: &App,
    payments: &Payments,
    order: Order,
    payment_method: Option<&str>,
) -> Result<(Order, PaymentIntent), PaymentError> {
    let mut order = order;
    if let Some(current) = order.payment.intent_id.clone() {
        let intent = payments.stripe.retrieve_intent(&current).await?;
        order = observe(app, payments, order, &intent).await?;
        let state = intent.facts().map(|facts| facts.state);
        if order.payment.status.money_taken() {
            return Ok((order, intent));
        }
        match (state, payment_method) {
            // Cancelled (by an earlier replacement that failed half-way, or
            // in Stripe's dashboard): it can never be paid; make another.
            (Some(IntentState::Canceled), _) => {}
            (_, None) => return Ok((order, intent)),
            // Waiting for a card: give it this one and confirm.
            (Some(IntentState::Open), Some(method)) => {
                return match payments.stripe.set_payment_method(&current, method).await {
                    Ok(_) => confirm(app, payments, order, &current).await,
                    // Confirmed meanwhile (a racing request, the browser).
                    Err(refused @ StripeError::Refused { .. }) => {
                        settled_meanwhile(app, payments, order, &current, refused).await
                    }
                    Err(err) => Err(err.into()),
                };
            }
            // Declined, or stuck on authentication: replace it below,
            // cancelling it first so that two can never both succeed unseen.
            (Some(IntentState::Failed | IntentState::RequiresAction), Some(_)) => {
                if let Some(paid) = cancel_intent(app, payments, &order, &current).await? {
                    return Ok(paid);
                }
            }
            _ => return Err(PaymentError::Conflict(format!("the order's payment is {}", intent.status))),
        }
    }
    if order.status != crate::domain::OrderStatus::Pending {
        return Err(PaymentError::Conflict(format!("the order is {}, not pending", order.status.as_str())));
    }
    let attempt = order.payment.attempts + 1;
    let key = format!("order-{}-intent-{attempt}", order.id);
    let intent = payments
        .stripe
        .create_intent(
            &order.id.to_string(),
            order.total_amount.minor(),
            payments.currency.as_str(),
            payment_method,
            &key,
        )
        .await?;
    let next = Order {
        payment: Payment { status: PaymentStatus::Unpaid, intent_id: Some(intent.id.clone()), attempts: attempt },
        updated_at: OffsetDateTime::now_utc(),
        ..order.clone()
    };
    match app.store.update_order(&order, &next, StockMove::Keep, &payments_actor()).await {
        Ok(()) => {}
        Err(StoreError::StatusChanged) => {
            // Another request saved its intent first: this one must never
            // be paid. The order as it stands now is the answer.
            if let Err(err) = payments.stripe.cancel_intent(&intent.id).await {
                tracing::warn!(order_id = %order.id, intent = %intent.id, error = %err, "could not cancel a PaymentIntent that lost a race");
            }
            let stood = reload(app, order.id).await?;
            let Some(current) = stood.payment.intent_id.clone() else {
                return Err(PaymentError::Conflict("the order changed meanwhile; try again".into()));
            };
            let intent = payments.stripe.retrieve_intent(&current).await?;
            return Ok((stood, intent));
        }
        Err(err) => {
            let _ = payments.stripe.cancel_intent(&intent.id).await;
            return Err(err.into());
        }
    }
    match payment_method {
        Some(_) => confirm(app, payments, next, &intent.id).await,
        None => Ok((next, intent)),
    }
}

/// Confirms the order's intent `intent_id` and applies what Stripe says.
async fn confirm(
    app: &App,
    payments: &Payments,
    order: Order,
    intent_id: &str,
) -> Result<(Order, PaymentIntent), PaymentError> {
    let confirmed = match payments.stripe.confirm_intent(intent_id).await {
        Ok(confirmed) => confirmed,
        // The decline shows on the intent: read it as it stands.
        Err(StripeError::Declined(reason)) => {
            tracing::info!(order_id = %order.id, intent = intent_id, reason, "card declined");
            payments.stripe.retrieve_intent(intent_id).await?
        }
        Err(refused @ StripeError::Refused { .. }) => {
            return settled_meanwhile(app, payments, order, intent_id, refused).await;
        }
        Err(err) => return Err(err.into()),
    };
    let order = observe(app, payments, order, &confirmed).await?;
    Ok((order, confirmed))
}

/// Stripe refused to change an intent: if someone else (a racing request,
/// the browser) moved it on, what it is now is the answer, applied;
/// otherwise the refusal is (an unknown payment method, say).
async fn settled_meanwhile(
    app: &App,
    payments: &Payments,
    order: Order,
    intent_id: &str,
    refused: StripeError,
) -> Result<(Order, PaymentIntent), PaymentError> {
    let intent = payments.stripe.retrieve_intent(intent_id).await?;
    let order = observe(app, payments, order, &intent).await?;
    match intent.facts().map(|facts| facts.state) {
        Some(IntentState::Succeeded | IntentState::Processing | IntentState::RequiresAction | IntentState::Failed) => {
            Ok((order, intent))
        }
        _ => Err(refused.into()),
    }
}

/// Cancels the order's open intent `intent_id`. When Stripe refuses
/// because it succeeded meanwhile, the payment is applied instead and the
/// order and intent are answered; `None` when it is cancelled (or was).
pub async fn cancel_intent(
    app: &App,
    payments: &Payments,
    order: &Order,
    intent_id: &str,
) -> Result<Option<(Order, PaymentIntent)>, PaymentError> {
    match payments.stripe.cancel_intent(intent_id).await {
        Ok(_) => Ok(None),
        Err(StripeError::Refused { .. }) => {
            let intent = payments.stripe.retrieve_intent(intent_id).await?;
            match intent.status.as_str() {
                "canceled" => Ok(None),
                _ => {
                    let order = observe(app, payments, order.clone(), &intent).await?;
                    Ok(Some((order, intent)))
                }
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// Applies what Stripe says of `intent` to the order it was made for, and
/// makes any refund that follows. Answers the order as it stands after.
/// Races (a cancel, the expiry, another delivery) are compare-and-set
/// conflicts: the order is read again and the decision made anew.
pub async fn observe(
    app: &App,
    payments: &Payments,
    order: Order,
    intent: &PaymentIntent,
) -> Result<Order, PaymentError> {
    let Some(facts) = intent.facts() else {
        tracing::warn!(intent = %intent.id, status = %intent.status, "unknown PaymentIntent status; ignored");
        return Ok(order);
    };
    let mut order = order;
    for _ in 0..4 {
        let now = OffsetDateTime::now_utc();
        let (next, stock) = match decide(&order, &facts, &payments.currency, now) {
            PaymentDecision::Ignore(why) => {
                if why.starts_with("amount") {
                    tracing::error!(order_id = %order.id, intent = %intent.id, amount = intent.amount, currency = %intent.currency, "a PaymentIntent's amount or currency differs from its order's; nothing changed");
                }
                return settle_refund(app, payments, order).await;
            }
            PaymentDecision::RefundStray => {
                refund_in_full(app, payments, &intent.id, intent.amount).await?;
                tracing::warn!(order_id = %order.id, intent = %intent.id, "refunded a second payment of a paid order");
                return Ok(order);
            }
            PaymentDecision::Update { next, stock } => (next, stock),
        };
        let written = match app.store.update_order(&order, &next, stock, &payments_actor()).await {
            Err(StoreError::InsufficientStock(_)) => {
                // A late payment for an expired order whose units are gone.
                let owed = refund_instead(&order, &intent.id, now);
                app.store.update_order(&order, &owed, StockMove::Keep, &payments_actor()).await.map(|()| owed)
            }
            other => other.map(|()| next),
        };
        match written {
            Ok(written) => {
                if stock == StockMove::Reserve {
                    for line in &written.items {
                        crate::handlers::products::invalidate_stock(app, line.product_id).await;
                    }
                }
                tracing::info!(order_id = %written.id, intent = %intent.id, status = written.status.as_str(), payment = written.payment.status.as_str(), event = "payment_applied", "payment state applied");
                return settle_refund(app, payments, written).await;
            }
            Err(StoreError::StatusChanged) => order = reload(app, order.id).await?,
            Err(err) => return Err(err.into()),
        }
    }
    Err(PaymentError::Store(StoreError::Unavailable("the order kept changing while a payment was applied".into())))
}

/// Makes the refund an order owes (`refund_pending`), then marks it
/// `refunded`. Never more than was paid: what Stripe already refunded of
/// the intent is subtracted first, so a retry after a crash between the
/// refund and the write refunds nothing twice, whether or not the server
/// honours the idempotency key. Answers the order as it stands after.
pub async fn settle_refund(app: &App, payments: &Payments, order: Order) -> Result<Order, PaymentError> {
    if order.payment.status != PaymentStatus::RefundPending {
        return Ok(order);
    }
    let Some(intent) = order.payment.intent_id.clone() else {
        return Err(PaymentError::Conflict("a refund is owed but the order names no payment".into()));
    };
    refund_in_full(app, payments, &intent, order.total_amount.minor()).await?;
    let next = Order {
        payment: Payment { status: PaymentStatus::Refunded, ..order.payment.clone() },
        updated_at: OffsetDateTime::now_utc(),
        ..order.clone()
    };
    match app.store.update_order(&order, &next, StockMove::Keep, &payments_actor()).await {
        Ok(()) => {
            tracing::info!(order_id = %order.id, intent, amount = order.total_amount.minor(), event = "order_refunded", "order refunded");
            Ok(next)
        }
        // Someone else marked it: the refund above found nothing owed.
        Err(StoreError::StatusChanged) => Ok(reload(app, order.id).await?),
        Err(err) => Err(err.into()),
    }
}

/// Refunds what is left of `paid` on the intent, holding the intent's
/// refund lease (see [`REFUND_LEASE`]) so that no two processes subtract
/// and refund at once.
async fn refund_in_full(app: &App, payments: &Payments, intent: &str, paid: u64) -> Result<(), PaymentError> {
    let lease = format!("refund:{intent}");
    if !app.store.record_payment_event(&lease, OffsetDateTime::now_utc() + REFUND_LEASE).await? {
        return Err(PaymentError::RefundInProgress);
    }
    let refunded = payments.stripe.refunded(intent).await?;
    let owed = paid.saturating_sub(refunded);
    if owed > 0 {
        // Derived from the intent: the same refund on every retry.
        payments.stripe.refund(intent, owed, &format!("refund-{intent}-{refunded}")).await?;
    }
    Ok(())
}

async fn reload(app: &App, id: OrderId) -> Result<Order, PaymentError> {
    app.store.order_by_id(id).await?.ok_or(PaymentError::Store(StoreError::NotFound))
}

/// What a cancelled or expired order still needs of Stripe: a refund it
/// owes, or its open intent cancelled (so it can no longer be paid; if it
/// was paid meanwhile, the payment is applied, and [`observe`] makes the
/// refund that follows). The refund consumer runs it for `order.cancelled`
/// and `order.expired`; it is idempotent. The intent is read first: the
/// cancel or the expiry has usually cancelled it already, and one read is
/// then all this costs.
pub async fn after_order_closed(app: &App, payments: &Payments, id: OrderId) -> Result<(), PaymentError> {
    let order = reload(app, id).await?;
    if order.payment.status == PaymentStatus::RefundPending {
        settle_refund(app, payments, order).await?;
        return Ok(());
    }
    let Some(intent_id) = order.payment.intent_id.clone() else { return Ok(()) };
    if order.payment.status.money_taken() {
        return Ok(());
    }
    let intent = payments.stripe.retrieve_intent(&intent_id).await?;
    match intent.facts().map(|facts| facts.state) {
        Some(IntentState::Canceled) => {}
        Some(IntentState::Succeeded) => {
            observe(app, payments, order, &intent).await?;
        }
        _ => {
            cancel_intent(app, payments, &order, &intent_id).await?;
        }
    }
    Ok(())
}

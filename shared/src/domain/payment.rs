//! Payments: what an order's payment is, and what a PaymentIntent's state
//! means for the order.
//!
//! The payment provider (Stripe) is the truth about money; the order keeps
//! the current PaymentIntent's id and a status derived from what the
//! provider said. [`decide`] is the one place that turns what the provider
//! says of an intent into the order's next state, the same for a signed
//! webhook, a re-read on `GET /api/orders/{id}/payment` and the reservation
//! expiry's check, so events arriving twice or out of order end in the same
//! state.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::order::{Order, OrderStatus};

/// Where an order's payment stands, beside its fulfilment status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Nothing paid: no intent yet, or one not confirmed.
    #[default]
    Unpaid,
    /// The card asks for authentication (3-D Secure) in the client.
    RequiresAction,
    Paid,
    /// The last attempt was declined; another card may be tried.
    Failed,
    /// Money was taken for an order that will not ship: the refund is owed
    /// and its consumer makes it.
    RefundPending,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Unpaid,
        PaymentStatus::RequiresAction,
        PaymentStatus::Paid,
        PaymentStatus::Failed,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "unpaid",
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        PaymentStatus::ALL.into_iter().find(|status| status.as_str() == raw)
    }

    /// True once money was taken (and maybe given back): no new intent may
    /// be made and no intent cancelled.
    pub fn money_taken(self) -> bool {
        matches!(self, PaymentStatus::Paid | PaymentStatus::RefundPending | PaymentStatus::Refunded)
    }
}

/// An order's payment as the shop knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payment {
    pub status: PaymentStatus,
    /// The order's current PaymentIntent: at most one is live per order. A
    /// declined one may be cancelled and replaced; a paid one stays.
    pub intent_id: Option<String>,
    /// How many intents were made for the order: the next one's
    /// idempotency key is derived from the order and this count.
    pub attempts: u32,
}

/// ISO 4217 currency code, lower-case as Stripe writes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let lower = raw.trim().to_ascii_lowercase();
        if lower.len() == 3 && lower.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Currency(lower))
        } else {
            Err(format!("`{raw}` is not a three-letter ISO 4217 currency code"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the provider says of one PaymentIntent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntentState {
    /// Waiting for a payment method or its confirmation.
    Open,
    /// The customer must authenticate the card.
    RequiresAction,
    /// The last attempt failed (`requires_payment_method` with an error).
    Failed,
    /// Settling (bank debits): neither paid nor failed yet.
    Processing,
    Succeeded,
    Canceled,
}

impl IntentState {
    /// Stripe's `status`, and whether a `last_payment_error` is present.
    pub fn from_stripe(status: &str, has_error: bool) -> Option<Self> {
        Some(match status {
            "requires_payment_method" if has_error => IntentState::Failed,
            "requires_payment_method" | "requires_confirmation" => IntentState::Open,
            "requires_action" => IntentState::RequiresAction,
            // Captured automatically here: no capture step is ever asked for.
            "processing" | "requires_capture" => IntentState::Processing,
            "succeeded" => IntentState::Succeeded,
            "canceled" => IntentState::Canceled,
            _ => return None,
        })
    }
}

/// One PaymentIntent as the provider described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentFacts {
    pub id: String,
    pub state: IntentState,
    pub amount_minor: u64,
    pub currency: String,
}

/// What the order's stock does in the same write as a payment change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockMove {
    Keep,
    /// Every line's units go back (cancelling, expiring).
    Release,
    /// Every line's units are taken again, each conditioned on enough
    /// stock (a payment landing on an expired order).
    Reserve,
}

/// What to do about what the provider said of an intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentDecision {
    /// Write `next` over the order as read (compare-and-set), with `stock`.
    Update { next: Order, stock: StockMove },
    /// Money was taken by an intent the order does not keep (a second
    /// intent of an order another one paid): refund that intent in full,
    /// leave the order as it is.
    RefundStray,
    /// Nothing changes; why, for the log.
    Ignore(&'static str),
}

/// The order's next state after the provider said `intent` of it.
/// `currency` is the shop's; an amount or currency other than the order's
/// changes nothing (and is logged by the caller).
pub fn decide(order: &Order, intent: &IntentFacts, currency: &Currency, at: OffsetDateTime) -> PaymentDecision {
    use PaymentDecision::*;
    let current = order.payment.intent_id.as_deref() == Some(intent.id.as_str());
    let update = |status: OrderStatus, payment: PaymentStatus, stock: StockMove| Update {
        next: Order {
            status,
            payment: super::Payment { status: payment, intent_id: Some(intent.id.clone()), ..order.payment.clone() },
            updated_at: at,
            ..order.clone()
        },
        stock,
    };
    match intent.state {
        IntentState::Succeeded => {
            if intent.amount_minor != order.total_amount.minor() || intent.currency != currency.as_str() {
                return Ignore("amount or currency differs from the order's");
            }
            if order.payment.status.money_taken() {
                return if current { Ignore("already applied") } else { RefundStray };
            }
            match order.status {
                OrderStatus::Pending => update(OrderStatus::Confirmed, PaymentStatus::Paid, StockMove::Keep),
                // The reservation ran out first: take the units again, or
                // refund (the caller falls back on a short line).
                OrderStatus::Expired => update(OrderStatus::Confirmed, PaymentStatus::Paid, StockMove::Reserve),
                OrderStatus::Cancelled => update(OrderStatus::Cancelled, PaymentStatus::RefundPending, StockMove::Keep),
                // Confirmed by an admin before payments were on: now paid.
                OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered => {
                    update(order.status, PaymentStatus::Paid, StockMove::Keep)
                }
            }
        }
        _ if !current => Ignore("not the order's current intent"),
        _ if order.payment.status.money_taken() => Ignore("the order is paid"),
        IntentState::Failed if order.payment.status != PaymentStatus::Failed => {
            update(order.status, PaymentStatus::Failed, StockMove::Keep)
        }
        IntentState::RequiresAction if order.payment.status != PaymentStatus::RequiresAction => {
            update(order.status, PaymentStatus::RequiresAction, StockMove::Keep)
        }
        _ => Ignore("no change"),
    }
}

/// An expired order whose late payment could not take its units again:
/// it stays expired and the payment is owed back.
pub fn refund_instead(order: &Order, intent_id: &str, at: OffsetDateTime) -> Order {
    Order {
        payment: super::Payment {
            status: PaymentStatus::RefundPending,
            intent_id: Some(intent_id.to_owned()),
            ..order.payment.clone()
        },
        updated_at: at,
        ..order.clone()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Money, OrderId, OrderItem, OrderSource, ProductId, UserId};

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-12-07 12:00 UTC)
    }

    fn order(status: OrderStatus, payment: PaymentStatus, intent: Option<&str>) -> Order {
        Order {
            id: OrderId(Uuid::from_u128(1)),
            user_id: UserId(Uuid::from_u128(2)),
            items: vec![OrderItem {
                product_id: ProductId(Uuid::from_u128(3)),
                product_name: "Mug".into(),
                quantity: 2,
                price_minor: 1250,
            }],
            total_amount: Money::from_minor(2500),
            status,
            source: OrderSource::Cart,
            payment: Payment { status: payment, intent_id: intent.map(str::to_owned), attempts: 1 },
            created_at: at(),
            updated_at: at(),
        }
    }

    fn intent(id: &str, state: IntentState, amount: u64) -> IntentFacts {
        IntentFacts { id: id.into(), state, amount_minor: amount, currency: "usd".into() }
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn next_of(decision: PaymentDecision) -> (OrderStatus, PaymentStatus, StockMove) {
        match decision {
            PaymentDecision::Update { next, stock } => (next.status, next.payment.status, stock),
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[test]
    fn a_success_confirms_a_pending_order_and_marks_it_paid() {
        let pending = order(OrderStatus::Pending, PaymentStatus::Unpaid, Some("pi_1"));
        let decision = decide(&pending, &intent("pi_1", IntentState::Succeeded, 2500), &usd(), at());
        assert_eq!(next_of(decision), (OrderStatus::Confirmed, PaymentStatus::Paid, StockMove::Keep));
    }

    #[test]
    fn a_success_for_another_amount_or_currency_changes_nothing() {
        let pending = order(OrderStatus::Pending, PaymentStatus::Unpaid, Some("pi_1"));
        let short = decide(&pending, &intent("pi_1", IntentState::Succeeded, 2499), &usd(), at());
        assert!(matches!(short, PaymentDecision::Ignore(_)));
        let mut euros = intent("pi_1", IntentState::Succeeded, 2500);
        euros.currency = "eur".into();
        assert!(matches!(decide(&pending, &euros, &usd(), at()), PaymentDecision::Ignore(_)));
    }

    #[test]
    fn a_success_seen_twice_is_applied_once() {
        let paid = order(OrderStatus::Confirmed, PaymentStatus::Paid, Some("pi_1"));
        let again = decide(&paid, &intent("pi_1", IntentState::Succeeded, 2500), &usd(), at());
        assert_eq!(again, PaymentDecision::Ignore("already applied"));
    }

    #[test]
    fn a_late_failure_never_undoes_a_payment() {
        let paid = order(OrderStatus::Confirmed, PaymentStatus::Paid, Some("pi_1"));
        let late = decide(&paid, &intent("pi_1", IntentState::Failed, 2500), &usd(), at());
        assert!(matches!(late, PaymentDecision::Ignore(_)));
    }

    #[test]
    fn a_second_intent_paid_after_the_first_is_refunded_alone() {
        let paid = order(OrderStatus::Confirmed, PaymentStatus::Paid, Some("pi_1"));
        let stray = decide(&paid, &intent("pi_2", IntentState::Succeeded, 2500), &usd(), at());
        assert_eq!(stray, PaymentDecision::RefundStray);
    }

    #[test]
    fn a_success_on_a_replaced_intent_still_pays_the_order() {
        let pending = order(OrderStatus::Pending, PaymentStatus::Failed, Some("pi_2"));
        let decision = decide(&pending, &intent("pi_1", IntentState::Succeeded, 2500), &usd(), at());
        let PaymentDecision::Update { next, .. } = decision else { panic!("expected an update") };
        assert_eq!((next.payment.status, next.payment.intent_id.as_deref()), (PaymentStatus::Paid, Some("pi_1")));
    }

    #[test]
    fn a_payment_for_an_expired_order_takes_its_units_again() {
        let expired = order(OrderStatus::Expired, PaymentStatus::Unpaid, Some("pi_1"));
        let decision = decide(&expired, &intent("pi_1", IntentState::Succeeded, 2500), &usd(), at());
        assert_eq!(next_of(decision), (OrderStatus::Confirmed, PaymentStatus::Paid, StockMove::Reserve));
        let refund = refund_instead(&expired, "pi_1", at());
        assert_eq!((refund.status, refund.payment.status), (OrderStatus::Expired, PaymentStatus::RefundPending));
    }

    #[test]
    fn a_payment_for_a_cancelled_order_is_owed_back() {
        let cancelled = order(OrderStatus::Cancelled, PaymentStatus::Unpaid, Some("pi_1"));
        let decision = decide(&cancelled, &intent("pi_1", IntentState::Succeeded, 2500), &usd(), at());
        assert_eq!(next_of(decision), (OrderStatus::Cancelled, PaymentStatus::RefundPending, StockMove::Keep));
    }

    #[test]
    fn failures_and_authentication_of_the_current_intent_show_on_the_order() {
        let pending = order(OrderStatus::Pending, PaymentStatus::Unpaid, Some("pi_1"));
        let failed = decide(&pending, &intent("pi_1", IntentState::Failed, 2500), &usd(), at());
        assert_eq!(next_of(failed), (OrderStatus::Pending, PaymentStatus::Failed, StockMove::Keep));
        let action = decide(&pending, &intent("pi_1", IntentState::RequiresAction, 2500), &usd(), at());
        assert_eq!(next_of(action), (OrderStatus::Pending, PaymentStatus::RequiresAction, StockMove::Keep));
        let old = decide(&pending, &intent("pi_0", IntentState::Failed, 2500), &usd(), at());
        assert_eq!(old, PaymentDecision::Ignore("not the order's current intent"));
    }

    #[test]
    fn stripe_statuses_map_to_states() {
        assert_eq!(IntentState::from_stripe("requires_payment_method", true), Some(IntentState::Failed));
        assert_eq!(IntentState::from_stripe("requires_payment_method", false), Some(IntentState::Open));
        assert_eq!(IntentState::from_stripe("succeeded", false), Some(IntentState::Succeeded));
        assert_eq!(IntentState::from_stripe("weird", false), None);
        assert!(Currency::parse("US").is_err() && Currency::parse("us1").is_err());
    }
}

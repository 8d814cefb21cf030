//! The payment routes: an order's PaymentIntent (create, confirm, read)
//! and Stripe's signed webhook. The rules live in [`crate::payments`].

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::orders::visible_order;
use crate::access::Principal;
use crate::app::App;
use crate::config::PaymentProvider;
use crate::domain::{FieldErrors, Order, OrderStatus, PaymentStatus};
use crate::error::ApiError;
use crate::http::{body_bytes, has_body, json, parse_json};
use crate::payments::stripe::{self, PaymentIntent, StripeError};
use crate::payments::{self, PaymentError, Payments};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PaymentRequest {
    /// A Stripe PaymentMethod id: confirm server-side with it.
    payment_method: Option<String>,
}

/// An order's payment as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub order_id: String,
    pub order_status: OrderStatus,
    pub payment_status: PaymentStatus,
    /// The intent's own status at Stripe (`requires_payment_method`,
    /// `requires_action`, `succeeded`...); `null` without an intent.
    pub status: Option<String>,
    /// In minor units, as Stripe counts.
    pub amount: u64,
    pub currency: String,
    /// What Stripe.js confirms the payment with; the owner's only.
    pub client_secret: Option<String>,
    pub intent_id: Option<String>,
}

impl PaymentView {
    pub fn of(order: &Order, intent: Option<&PaymentIntent>, currency: &str) -> Self {
        PaymentView {
            order_id: order.id.to_string(),
            order_status: order.status,
            payment_status: order.payment.status,
            status: intent.map(|i| i.status.clone()),
            amount: order.total_amount.minor(),
            currency: currency.to_owned(),
            client_secret: intent.and_then(|i| i.client_secret.clone()),
            intent_id: order.payment.intent_id.clone(),
        }
    }
}

/// Payments as configured, or why there are none.
fn enabled(app: &App) -> Result<&Payments, ApiError> {
    match (&app.payments, app.config.payment_provider) {
        (Some(payments), _) => Ok(payments),
        (None, PaymentProvider::None) => {
            Err(ApiError::Conflict("payments are off (PAYMENT_PROVIDER=none): an admin confirms orders".into()))
        }
        (None, PaymentProvider::Stripe) => Err(ApiError::unavailable("the Stripe client is not configured")),
    }
}

/// `POST /api/orders/{id}/payment`: the order's PaymentIntent, made when it
/// has none (or replacing a declined one); with `paymentMethod`, also
/// confirmed server-side.
pub async fn create(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let payments = enabled(app)?;
    let order = visible_order(app, &principal, &request).await?;
    if order.user_id != principal.user_id {
        return Err(ApiError::Forbidden("only the order's owner pays for it".into()));
    }
    let body: PaymentRequest = if has_body(&request) {
        parse_json(&request, app.config.max_body_bytes)?
    } else {
        PaymentRequest { payment_method: None }
    };
    // A PaymentMethod id is longer than its `pm_` prefix.
    if let Some(method) = &body.payment_method
        && !(stripe::is_id(method) && method.len() > 3)
    {
        let mut errors = FieldErrors::new();
        errors.add("paymentMethod", "must be a Stripe PaymentMethod id (pm_...)");
        return Err(errors.into());
    }
    if order.status != OrderStatus::Pending {
        return Err(ApiError::Conflict(format!(
            "the order is {}: only a pending order is paid",
            order.status.as_str()
        )));
    }
    let (order, intent) = Box::pin(payments::start(app, payments, order, body.payment_method.as_deref()))
        .await
        .map_err(payment_failed)?;
    json(StatusCode::OK, &PaymentView::of(&order, Some(&intent), payments.currency.as_str()))
}

/// `GET /api/orders/{id}/payment`: the order's payment, re-read from Stripe
/// until it is settled (a late or lost webhook heals here, a refund owed is
/// made).
pub async fn get(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let payments = enabled(app)?;
    let order = visible_order(app, &principal, &request).await?;
    let Some(intent_id) = order.payment.intent_id.clone() else {
        return json(StatusCode::OK, &PaymentView::of(&order, None, payments.currency.as_str()));
    };
    // Settled once paid (and still paid) or refunded; anything else may have
    // news at Stripe: a payment whose webhook was lost, on a pending order
    // or on one that expired or was cancelled meanwhile, or a refund owed.
    let unsettled = !matches!(order.payment.status, PaymentStatus::Paid | PaymentStatus::Refunded);
    let intent = payments.stripe.retrieve_intent(&intent_id).await.map_err(|err| payment_failed(err.into()))?;
    let order = match unsettled {
        false => order,
        true => match Box::pin(payments::observe(app, payments, order.clone(), &intent)).await {
            Ok(order) => order,
            // Another process is making the refund: show where it stands.
            Err(PaymentError::RefundInProgress) => app.store.order_by_id(order.id).await?.unwrap_or(order),
            Err(err) => return Err(payment_failed(err)),
        },
    };
    let mut view = PaymentView::of(&order, Some(&intent), payments.currency.as_str());
    if order.user_id != principal.user_id {
        // An admin sees the payment, not what confirms it.
        view.client_secret = None;
    }
    json(StatusCode::OK, &view)
}

/// The Stripe event fields read; the rest of the body is Stripe's.
#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: StripeEventData,
}

#[derive(Deserialize)]
struct StripeEventData {
    object: serde_json::Value,
}

/// `POST /api/payments/stripe/webhook`: Stripe's events, signature-checked
/// on the raw bytes. Each event id is applied once; what an intent's event
/// means is decided on the intent as Stripe has it now (read again), so
/// events arriving twice or out of order end in the same state. Anything
/// but a 2xx makes Stripe deliver again later.
pub async fn webhook(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let payments = enabled(app)?;
    let body = body_bytes(&request);
    if body.len() > app.config.max_body_bytes {
        return Err(ApiError::PayloadTooLarge { limit: app.config.max_body_bytes });
    }
    let header = request.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = OffsetDateTime::now_utc();
    payments::signature::verify(header, body, &payments.webhook_secret, now.unix_timestamp())
        .map_err(|err| ApiError::bad_request(format!("invalid Stripe signature: {err}")))?;
    let event: StripeEvent =
        serde_json::from_slice(body).map_err(|_| ApiError::bad_request("the body is not a Stripe event"))?;
    let received = |note: &str| json(StatusCode::OK, &serde_json::json!({ "received": true, "note": note }));
    if !event.event_type.starts_with("payment_intent.") {
        return received("event type ignored");
    }
    if app.store.payment_event_seen(&event.id, now).await? {
        return received("already applied");
    }
    let Ok(intent) = serde_json::from_value::<PaymentIntent>(event.data.object) else {
        return Err(ApiError::bad_request("the event's object is not a PaymentIntent"));
    };
    let order = match intent.order_id().and_then(crate::domain::OrderId::parse) {
        Some(id) => app.store.order_by_id(id).await?,
        None => None,
    };
    let Some(order) = order else {
        tracing::warn!(event_id = %event.id, intent = %intent.id, "a Stripe event for no order of this shop; ignored");
        return received("no such order");
    };
    // The intent as Stripe has it now, not as this (maybe old) event saw it.
    let intent = payments.stripe.retrieve_intent(&intent.id).await.map_err(|err| payment_failed(err.into()))?;
    let order = Box::pin(payments::observe(app, payments, order, &intent)).await.map_err(payment_failed)?;
    app.store.record_payment_event(&event.id, now + payments::EVENT_MEMORY).await?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, order_id = %order.id, payment = order.payment.status.as_str(), "Stripe event applied");
    received("applied")
}

/// A payment step's failure as the client sees it: Stripe down or slow is
/// a 503 (retry); a request Stripe refused (an unknown payment method) is
/// a 422; the order's state a 409.
pub(super) fn payment_failed(err: PaymentError) -> ApiError {
    match err {
        PaymentError::Conflict(message) => ApiError::Conflict(message),
        PaymentError::RefundInProgress => ApiError::Unavailable {
            cause: "a refund of this payment is in progress".into(),
            retry_after: std::time::Duration::from_secs(2),
        },
        PaymentError::Store(err) => err.into(),
        PaymentError::Stripe(StripeError::BreakerOpen(retry_after)) => {
            ApiError::Unavailable { cause: "stripe circuit breaker open".into(), retry_after }
        }
        PaymentError::Stripe(StripeError::Unavailable(cause)) => ApiError::unavailable(format!("stripe: {cause}")),
        PaymentError::Stripe(StripeError::Declined(message)) => {
            ApiError::Unprocessable(format!("the card was declined: {message}"))
        }
        PaymentError::Stripe(StripeError::Refused { message, .. }) => {
            ApiError::Unprocessable(format!("Stripe refused the payment: {message}"))
        }
    }
}

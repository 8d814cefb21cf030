//! `POST /api/checkout`: the caller's cart becomes one `pending` order.
//!
//! The order is priced from the catalog at checkout and written in one
//! atomic write with every line's stock reservation, the idempotency
//! record and the cart's removal conditioned on the version read here
//! ([`crate::store::CartStore::check_out`]). So a cart edited meanwhile,
//! a second tab's checkout or a double click without a key finds the cart
//! changed (409) and reserves nothing; short stock leaves the cart as it
//! was, for the shopper to mend.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::carts::{load, products_of};
use super::idempotency::{self, Claimed};
use super::orders::{placed, placing_failed, take_turns};
use super::views::OrderView;
use crate::access::Principal;
use crate::app::App;
use crate::domain::order::order_total;
use crate::domain::{Cart, Order, OrderId, OrderItem, OrderSource, OrderStatus, Product};
use crate::error::ApiError;
use crate::http::{has_body, parse_json};
use crate::metrics::{self, Metric};
use crate::store::{IdempotencyTicket, StoreError};

/// What identifies a checkout behind an `Idempotency-Key`: the request has
/// no lines of its own (the cart may be gone after the first one), and a
/// key first used to place an order directly is a different request.
const FINGERPRINT: &str = "checkout";

/// The body, when there is one: no fields yet, and unknown ones are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutRequest {}

pub async fn checkout(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    if has_body(&request) {
        let _: CheckoutRequest = parse_json(&request, app.config.max_body_bytes)?;
    }
    let ticket = match idempotency::claim(app, &principal, &request, || FINGERPRINT.to_owned()).await? {
        Claimed::Proceed(ticket) => ticket,
        Claimed::Replayed(response) => return Ok(response),
    };
    let result = check_out(app, &principal, ticket.as_ref()).await;
    idempotency::settle(app, ticket.as_ref(), &result).await;
    result
}

async fn check_out(
    app: &App,
    principal: &Principal,
    ticket: Option<&IdempotencyTicket>,
) -> Result<Response<Body>, ApiError> {
    let cart = load(app, principal.user_id).await?;
    if cart.is_empty() {
        return Err(ApiError::Unprocessable("the cart is empty: add products before checking out".into()));
    }
    // A turn at each product's stock; a short line is then refused from
    // the read, without a transaction.
    let lines: Vec<_> = cart.lines.iter().map(|line| (line.product_id, line.quantity)).collect();
    let _turns = take_turns(app, &lines).await?;
    let products = products_of(app, &cart, None).await?;
    for product in products.iter().flatten() {
        app.order_queues.note_stock(product);
    }
    let order = order_of(&cart, &products)?;
    let body = serde_json::to_string(&OrderView::from(&order)).map_err(|e| ApiError::Internal(e.to_string()))?;
    let completion = ticket.map(|t| (t, body.as_str()));
    app.store.check_out(&order, cart.version, completion).await.map_err(|err| match err {
        StoreError::CartChanged => {
            ApiError::Conflict("the cart changed during checkout; review it and check out again".into())
        }
        other => placing_failed(&order, other),
    })?;
    placed(app, &order, body).await
}

/// The pending order of `cart` at the catalog's prices now, or the 409
/// naming every line that could not be bought as it stands (deleted, or
/// short of stock as read; the reservation itself decides the rest).
fn order_of(cart: &Cart, products: &[Option<Product>]) -> Result<Order, ApiError> {
    let mut unavailable = Map::new();
    let mut names = Vec::new();
    let mut items = Vec::with_capacity(cart.lines.len());
    for (line, product) in cart.lines.iter().zip(products) {
        match product {
            Some(product) if product.stock >= line.quantity => items.push(OrderItem {
                product_id: line.product_id,
                product_name: product.name.as_str().to_owned(),
                quantity: line.quantity,
                price_minor: product.price.minor(),
            }),
            Some(product) => {
                let reason = format!("not enough stock for {} ({} left)", line.quantity, product.stock);
                unavailable.insert(line.product_id.to_string(), Value::String(reason));
                names.push(product.name.as_str().to_owned());
            }
            None => {
                unavailable.insert(line.product_id.to_string(), Value::String("no longer sold".into()));
                names.push(line.product_name.clone());
            }
        }
    }
    if !unavailable.is_empty() {
        metrics::count(Metric::OrdersOutOfStock);
        let message = format!("some products cannot be bought as the cart stands: {}", names.join(", "));
        return Err(ApiError::ConflictWith { message, details: unavailable });
    }
    let total_amount = order_total(&items).ok_or_else(|| ApiError::bad_request("order total is too large"))?;
    let now = OffsetDateTime::now_utc();
    Ok(Order {
        id: OrderId::new(),
        user_id: cart.user_id,
        items,
        total_amount,
        status: OrderStatus::Pending,
        source: OrderSource::Cart,
        payment: Default::default(),
        created_at: now,
        updated_at: now,
    })
}

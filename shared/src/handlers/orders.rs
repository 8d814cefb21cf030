//! The order routes: place (with `Idempotency-Key`), list, read, read the
//! lines, change the status.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Map, Number, Value, json};
use time::OffsetDateTime;

use super::idempotency::{self, Claimed};
use super::products::invalidate_stock;
use super::query::{known_params, page_limit};
use super::views::OrderView;
use crate::access::Principal;
use crate::app::App;
use crate::domain::order::{TransitionError, order_total};
use crate::domain::payment::StockMove;
use crate::domain::{
    FieldErrors, Order, OrderId, OrderItem, OrderLines, OrderSource, OrderStatus, Payment, PaymentStatus, UserId,
};
use crate::error::ApiError;
use crate::events::Actor;
use crate::http::{json, json_bytes, parse_json, path_param, with_location};
use crate::metrics::{self, Metric};
use crate::payments::PaymentError;
use crate::store::{IdempotencyTicket, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewOrder {
    items: Vec<NewLine>,
    /// Accepted only when it is the caller's own id.
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewLine {
    product_id: String,
    quantity: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: String,
}

/// `POST /api/orders` -> 201 order. With an `Idempotency-Key`, a retry with
/// the same body gets the first response again (`Idempotent-Replayed:
/// true`) and reserves nothing; another body with the key is a 422.
pub async fn create(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let body: NewOrder = parse_json(&request, app.config.max_body_bytes)?;
    if body.user_id.as_deref().is_some_and(|id| UserId::parse(id) != Some(principal.user_id)) {
        return Err(ApiError::Forbidden("orders can only be placed for yourself".into()));
    }
    let raw: Vec<(String, Number)> = body.items.into_iter().map(|line| (line.product_id, line.quantity)).collect();
    let lines = OrderLines::parse(&raw).map_err(|errors| {
        let mut details = FieldErrors::new();
        for (field, message) in errors {
            details.add(&field, message);
        }
        ApiError::from(details)
    })?;
    let ticket = match idempotency::claim(app, &principal, &request, || fingerprint(&lines)).await? {
        Claimed::Proceed(ticket) => ticket,
        Claimed::Replayed(response) => return Ok(response),
    };
    let result = place(app, &principal, &lines, ticket.as_ref()).await;
    idempotency::settle(app, ticket.as_ref(), &result).await;
    result
}

async fn place(
    app: &App,
    principal: &Principal,
    lines: &OrderLines,
    ticket: Option<&IdempotencyTicket>,
) -> Result<Response<Body>, ApiError> {
    let _turns = take_turns(app, lines.lines()).await?;
    let lookups = lines.lines().iter().map(|(id, _)| app.store.product_by_id(*id));
    let products = futures::future::join_all(lookups).await;
    let mut unknown = Map::new();
    let mut short = Vec::new();
    let mut items = Vec::with_capacity(products.len());
    for ((id, quantity), product) in lines.lines().iter().zip(products) {
        match product? {
            Some(product) => items.push({
                if product.stock < *quantity {
                    short.push(*id);
                }
                app.order_queues.note_stock(&product);
                OrderItem {
                    product_id: *id,
                    product_name: product.name.as_str().to_owned(),
                    quantity: *quantity,
                    price_minor: product.price.minor(),
                }
            }),
            None => {
                unknown.insert(id.to_string(), Value::String("no such product".into()));
            }
        }
    }
    if !unknown.is_empty() {
        let names: Vec<&String> = unknown.keys().collect();
        let message = format!("unknown products: {}", names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
        return Err(ApiError::BadRequest { message, details: Some(unknown) });
    }
    let total_amount = order_total(&items).ok_or_else(|| ApiError::bad_request("order total is too large"))?;
    let now = OffsetDateTime::now_utc();
    let order = Order {
        id: OrderId::new(),
        user_id: principal.user_id,
        items,
        total_amount,
        status: OrderStatus::Pending,
        source: OrderSource::Api,
        payment: Default::default(),
        created_at: now,
        updated_at: now,
    };
    if !short.is_empty() {
        // The sold-out fast path: the stock just read (strongly consistent)
        // is short, so no transaction is sent to be refused.
        return Err(placing_failed(&order, StoreError::InsufficientStock(short)));
    }
    let body = serde_json::to_string(&OrderView::from(&order)).map_err(|e| ApiError::Internal(e.to_string()))?;
    app.store
        .place_order(&order, ticket.map(|t| (t, body.as_str())))
        .await
        .map_err(|err| placing_failed(&order, err))?;
    placed(app, &order, body).await
}

/// What a failed placing write means for the client: short stock is the
/// 409 naming each short product; anything else as the store said.
pub(super) fn placing_failed(order: &Order, err: StoreError) -> ApiError {
    match err {
        StoreError::InsufficientStock(short) => {
            metrics::count(Metric::OrdersOutOfStock);
            insufficient_stock(order, &short)
        }
        other => other.into(),
    }
}

/// What follows a placed order, however it was placed: metrics, the
/// catalog cache, the log line, and the 201 with its `Location`.
pub(super) async fn placed(app: &App, order: &Order, body: String) -> Result<Response<Body>, ApiError> {
    metrics::count(Metric::OrdersPlaced);
    // A metric, not money arithmetic: the exact total stays in minor units.
    metrics::add(Metric::OrderValue, order.total_amount.minor() as f64 / 100.0);
    for item in &order.items {
        invalidate_stock(app, item.product_id).await;
    }
    tracing::info!(
        order_id = %order.id,
        user_id = %order.user_id,
        total = %order.total_amount,
        lines = order.items.len(),
        source = order.source.as_str(),
        event = "order_placed",
        "order placed"
    );
    let body = with_payment(app, order, body).await;
    let response = json_bytes(StatusCode::CREATED, body)?;
    Ok(with_location(response, &format!("/api/orders/{}", order.id)))
}

/// With payments on, the new order's PaymentIntent is made now and
/// answered beside the order (`payment`, with its `clientSecret`), so the
/// client confirms it at once. Stripe down or slow does not undo the
/// order: `payment` is `null` and `paymentError` says to retry through
/// `POST /api/orders/{id}/payment`; the reservation expiry frees the stock
/// of an order never paid. (A replay of an `Idempotency-Key` answers the
/// order as first placed, without `payment`: that route gives it.)
async fn with_payment(app: &App, order: &Order, body: String) -> String {
    let Some(payments) = &app.payments else { return body };
    let Ok(Value::Object(mut answer)) = serde_json::from_str::<Value>(&body) else { return body };
    // Boxed: the payment's state would otherwise sit inside every placing
    // handler's future (and overflow a debug build's test-thread stack).
    match Box::pin(crate::payments::start(app, payments, order.clone(), None)).await {
        Ok((order, intent)) => {
            let view = super::payments::PaymentView::of(&order, Some(&intent), payments.currency.as_str());
            answer.insert("payment".into(), serde_json::to_value(view).unwrap_or(Value::Null));
        }
        Err(err) => {
            tracing::warn!(order_id = %order.id, error = %err, "the order's PaymentIntent could not be made; the client may retry");
            answer.insert("payment".into(), Value::Null);
            answer.insert(
                "paymentError".into(),
                Value::String(format!(
                    "the payment could not be started ({err}); retry with POST /api/orders/{}/payment",
                    order.id
                )),
            );
        }
    }
    serde_json::to_string(&answer).unwrap_or(body)
}

/// A turn at each product's stock before reading it (see
/// [`crate::resilience::key_queue`]): a rush on one product waits here, one
/// order at a time, not inside the store. A product this process saw sold
/// out a moment ago answers the 409 at once, as [`insufficient_stock`] says
/// it. Placing an order and checking out a cart both take their turns here.
pub(super) async fn take_turns<'a>(
    app: &'a App,
    lines: &[(crate::domain::ProductId, u64)],
) -> Result<crate::resilience::key_queue::Held<'a>, ApiError> {
    let ids = || lines.iter().map(|(id, _)| *id);
    let turns = app.order_queues.hold(ids()).await.map_err(ApiError::no_turn)?;
    if let Some((id, name)) = app.order_queues.any_sold_out(ids()) {
        let quantity = lines.iter().find(|(line, _)| *line == id).map_or(1, |(_, quantity)| *quantity);
        metrics::count(Metric::OrdersOutOfStock);
        let details = Map::from_iter([(id.to_string(), Value::String(format!("not enough stock for {quantity}")))]);
        return Err(ApiError::ConflictWith { message: format!("insufficient stock: {name}"), details });
    }
    Ok(turns)
}

/// The 409 of an order some of whose lines are short of stock, naming each.
fn insufficient_stock(order: &Order, short: &[crate::domain::ProductId]) -> ApiError {
    let mut details = Map::new();
    let mut names = Vec::new();
    for item in order.items.iter().filter(|item| short.contains(&item.product_id)) {
        details.insert(item.product_id.to_string(), Value::String(format!("not enough stock for {}", item.quantity)));
        names.push(item.product_name.clone());
    }
    ApiError::ConflictWith { message: format!("insufficient stock: {}", names.join(", ")), details }
}

/// Identifies the request behind an idempotency key: its merged lines in
/// product order, so key order and repeated lines do not matter.
fn fingerprint(lines: &OrderLines) -> String {
    let mut canonical: Vec<String> = lines.lines().iter().map(|(id, quantity)| format!("{id}:{quantity}")).collect();
    canonical.sort();
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.join(",").as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `GET /api/orders`: the caller's orders, newest first. Admins may ask for
/// another user's (`userId`) or for every order in a `status`.
pub async fn list(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let mut errors = FieldErrors::new();
    let params = known_params(&request, &["status", "userId", "limit", "cursor"], &mut errors);
    let status = params.first("status").and_then(|raw| errors.check("status", OrderStatus::parse(raw)));
    let user = params
        .first("userId")
        .and_then(|raw| errors.check("userId", UserId::parse(raw).ok_or("must be a user id".into())));
    let limit = page_limit(params.first("limit"), &mut errors);
    if !errors.is_empty() {
        return Err(errors.into());
    }
    if user.is_some_and(|id| !principal.owns_or_administers(id)) {
        return Err(ApiError::Forbidden("only admins may list another user's orders".into()));
    }
    // Admin with a status and no user: every user's orders in that status.
    let all_users = principal.is_admin() && user.is_none() && status.is_some();
    let owner = user.unwrap_or(principal.user_id);
    let scope = format!(
        "orders|{}|{}",
        if all_users { "*".to_owned() } else { owner.to_string() },
        status.map_or("", OrderStatus::as_str)
    );
    let after: Option<OrderId> = params.first("cursor").map(|cursor| app.cursors.decode(&scope, cursor)).transpose()?;
    let page = match (all_users, status) {
        (true, Some(status)) => app.store.orders_by_status(status, limit, after).await?,
        _ => app.store.orders_of_user(owner, status, limit, after).await?,
    };
    let items: Vec<OrderView> = page.items.iter().map(OrderView::from).collect();
    let next = page.next.map(|id| app.cursors.encode(&scope, &id));
    json(StatusCode::OK, &json!({ "items": items, "nextCursor": next }))
}

/// `GET /api/orders/{id}`: the owner's or an admin's; anyone else gets 404.
pub async fn get(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let order = visible_order(app, &principal, &request).await?;
    json(StatusCode::OK, &OrderView::from(&order))
}

/// `GET /api/orders/{id}/items`: the order's lines.
pub async fn items(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let order = visible_order(app, &principal, &request).await?;
    let view = OrderView::from(&order);
    json(StatusCode::OK, &json!({ "orderId": order.id, "items": view.items }))
}

/// `PUT /api/orders/{id}/status`: the workflow's next step (admin), or a
/// cancel (owner or admin) that returns the stock.
pub async fn update_status(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let order = visible_order(app, &principal, &request).await?;
    let body: StatusChange = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let Some(to) = errors.check("status", OrderStatus::parse(&body.status)) else { return Err(errors.into()) };
    order.status.check_transition(to, principal.role).map_err(|err| match err {
        TransitionError::AdminOnly => ApiError::Forbidden(format!("only an admin may mark an order {}", to.as_str())),
        TransitionError::NotAllowed => {
            ApiError::Conflict(format!("an order cannot go from {} to {}", order.status.as_str(), to.as_str()))
        }
    })?;
    let by = Actor::User { user_id: principal.user_id, role: principal.role };
    let conflict = |err| match err {
        StoreError::StatusChanged => ApiError::Conflict("the order's status changed meanwhile; reload it".into()),
        StoreError::NotFound => not_found(),
        other => other.into(),
    };
    let updated = match &app.payments {
        None => app.store.change_order_status(&order, to, OffsetDateTime::now_utc(), &by).await.map_err(conflict)?,
        Some(payments) => {
            Box::pin(change_paid_order(app, payments, order.clone(), to, &by)).await.map_err(|err| match err {
                PaymentError::Store(err) => conflict(err),
                other => super::payments::payment_failed(other),
            })?
        }
    };
    if to == OrderStatus::Cancelled {
        metrics::count(Metric::OrdersCancelled);
        for item in &updated.items {
            app.order_queues.restocked(item.product_id);
            invalidate_stock(app, item.product_id).await;
        }
    }
    tracing::info!(order_id = %order.id, from = order.status.as_str(), to = to.as_str(), event = "order_status_changed", "order status changed");
    json(StatusCode::OK, &OrderView::from(&updated))
}

/// A status change with payments on. Only a payment confirms an order.
/// Cancelling an unpaid order cancels its PaymentIntent first (if Stripe
/// says it was paid meanwhile, the payment is applied and the cancel goes
/// on as a paid order's); cancelling a paid order returns the stock and
/// sets `refund_pending` in the same write, and the refund consumer of
/// `order.cancelled` gives the money back.
async fn change_paid_order(
    app: &App,
    payments: &crate::payments::Payments,
    order: Order,
    to: OrderStatus,
    by: &Actor,
) -> Result<Order, PaymentError> {
    let now = OffsetDateTime::now_utc();
    if to == OrderStatus::Confirmed && order.payment.status != PaymentStatus::Paid {
        return Err(PaymentError::Conflict("with Stripe payments on, only a payment confirms an order".into()));
    }
    if to != OrderStatus::Cancelled {
        return Ok(app.store.change_order_status(&order, to, now, by).await?);
    }
    let mut order = order;
    if let Some(intent) = order.payment.intent_id.clone()
        && !order.payment.status.money_taken()
    {
        match crate::payments::cancel_intent(app, payments, &order, &intent).await {
            Ok(Some((paid, _))) => order = paid,
            Ok(None) => {}
            // Stripe unreachable: cancel all the same; the consumer of
            // `order.cancelled` cancels the intent later, and a payment
            // landing meanwhile on the cancelled order is refunded.
            Err(err) => tracing::warn!(order_id = %order.id, error = %err, "could not cancel the PaymentIntent now"),
        }
        if order.status == OrderStatus::Cancelled {
            return Err(PaymentError::Conflict("the order was cancelled meanwhile".into()));
        }
    }
    let payment = match order.payment.status {
        PaymentStatus::Paid => Payment { status: PaymentStatus::RefundPending, ..order.payment.clone() },
        _ => order.payment.clone(),
    };
    let next = Order { status: OrderStatus::Cancelled, payment, updated_at: now, ..order.clone() };
    app.store.update_order(&order, &next, StockMove::Release, by).await?;
    Ok(next)
}

fn not_found() -> ApiError {
    ApiError::NotFound("order not found".into())
}

/// The order of the `{id}` path parameter, if the caller may see it.
/// Another user's order is a 404, not a 403: its existence is not told.
pub(super) async fn visible_order(app: &App, principal: &Principal, request: &Request) -> Result<Order, ApiError> {
    let id = path_param(request, "id").and_then(OrderId::parse).ok_or_else(not_found)?;
    let order = app.store.order_by_id(id).await?.ok_or_else(not_found)?;
    if !principal.owns_or_administers(order.user_id) {
        return Err(not_found());
    }
    Ok(order)
}

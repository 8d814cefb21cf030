//! The cart routes: read, set a line, remove a line, empty the cart. Every
//! answer but the empty cart's 204 is the whole cart priced from the
//! catalog now ([`CartView`]).
//!
//! Writes are read-modify-write with a compare-and-set on the cart's
//! version. Without `If-Match`, a write that lost a race with another
//! write is redone on the newer cart (two tabs adding different products
//! both land); with `If-Match: <version>`, the client said which cart it
//! meant, so a changed cart is a 412 and nothing is written.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Number;
use time::OffsetDateTime;

use super::views::CartView;
use crate::access::Principal;
use crate::app::App;
use crate::domain::cart::parse_quantity;
use crate::domain::{Cart, FieldErrors, Product, ProductId, UserId};
use crate::error::ApiError;
use crate::http::{json, no_content, parse_json, path_param};
use crate::store::StoreError;

/// Attempts of a write without `If-Match` that keeps losing races.
const WRITE_ATTEMPTS: usize = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineQuantity {
    quantity: Number,
}

/// `GET /api/cart`: the caller's cart; an empty one is a 200 too.
pub async fn get(app: &App, principal: Principal) -> Result<Response<Body>, ApiError> {
    let cart = load(app, principal.user_id).await?;
    respond(app, &cart, None).await
}

/// `PUT /api/cart/items/{productId}` `{quantity}`: sets the line (0 removes
/// it). The product must exist to be added; it may be short of stock.
pub async fn put_item(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let product_id = product_param(&request)?;
    let body: LineQuantity = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let Some(quantity) = errors.check("quantity", parse_quantity(&body.quantity)) else { return Err(errors.into()) };
    let expected = if_match(&request)?;
    let product = match quantity {
        0 => None,
        _ => Some(
            app.store
                .product_by_id(product_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("product {product_id} not found")))?,
        ),
    };
    let cart = write(app, principal.user_id, expected, |cart| match &product {
        Some(product) => set_line(cart, product, quantity),
        None => Ok(cart.remove(product_id)),
    })
    .await?;
    respond(app, &cart, product.as_ref()).await
}

/// `DELETE /api/cart/items/{productId}`: removes the line, if there is one.
pub async fn delete_item(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let product_id = product_param(&request)?;
    let expected = if_match(&request)?;
    let cart = write(app, principal.user_id, expected, |cart| Ok(cart.remove(product_id))).await?;
    respond(app, &cart, None).await
}

/// `DELETE /api/cart`: 204, whether there was a cart or not.
pub async fn clear(app: &App, principal: Principal, request: Request) -> Result<Response<Body>, ApiError> {
    let expected = if_match(&request)?;
    app.store.delete_cart(principal.user_id, expected).await.map_err(changed_as_412)?;
    Ok(no_content())
}

/// The caller's cart, or the empty one.
pub(super) async fn load(app: &App, user_id: UserId) -> Result<Cart, ApiError> {
    Ok(app.store.cart(user_id, OffsetDateTime::now_utc()).await?.unwrap_or_else(|| Cart::empty(user_id)))
}

/// Each line's product now (`None` when deleted), read in parallel; a
/// product this request read already (`known`) is not read again.
pub(super) async fn products_of(
    app: &App,
    cart: &Cart,
    known: Option<&Product>,
) -> Result<Vec<Option<Product>>, ApiError> {
    let reads = cart.lines.iter().map(|line| async move {
        match known.filter(|product| product.id == line.product_id) {
            Some(product) => Ok(Some(product.clone())),
            None => app.store.product_by_id(line.product_id).await,
        }
    });
    futures::future::join_all(reads).await.into_iter().map(|read| read.map_err(ApiError::from)).collect()
}

/// The whole cart, priced; `known` as for [`products_of`].
async fn respond(app: &App, cart: &Cart, known: Option<&Product>) -> Result<Response<Body>, ApiError> {
    let priced = cart.priced(&products_of(app, cart, known).await?);
    json(StatusCode::OK, &CartView::of(cart, &priced))
}

fn set_line(cart: &mut Cart, product: &Product, quantity: u64) -> Result<bool, ApiError> {
    cart.set_quantity(product, quantity).map_err(|limit| ApiError::Conflict(limit.to_string()))
}

/// Applies `change` to the stored cart and saves it if it changed; the
/// cart as stored after. See the module doc for races.
async fn write(
    app: &App,
    user_id: UserId,
    expected: Option<u64>,
    change: impl Fn(&mut Cart) -> Result<bool, ApiError>,
) -> Result<Cart, ApiError> {
    for _ in 0..WRITE_ATTEMPTS {
        let mut cart = load(app, user_id).await?;
        if expected.is_some_and(|version| version != cart.version) {
            return Err(precondition_failed(cart.version));
        }
        if !change(&mut cart)? {
            return Ok(cart);
        }
        let now = OffsetDateTime::now_utc();
        let cart = cart.next_version(now);
        match app.store.save_cart(&cart, now + app.config.cart_ttl).await {
            Ok(()) => return Ok(cart),
            Err(StoreError::CartChanged) if expected.is_some() => return Err(changed_as_412(StoreError::CartChanged)),
            Err(StoreError::CartChanged) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict("the cart kept changing; reload it and try again".into()))
}

fn precondition_failed(current: u64) -> ApiError {
    ApiError::PreconditionFailed(format!("the cart changed: it is at version {current}; reload it"))
}

fn changed_as_412(err: StoreError) -> ApiError {
    match err {
        StoreError::CartChanged => ApiError::PreconditionFailed("the cart changed meanwhile; reload it".into()),
        other => other.into(),
    }
}

/// The `{productId}` path parameter; one that is no product id names no
/// product (404).
fn product_param(request: &Request) -> Result<ProductId, ApiError> {
    let raw = path_param(request, "productId").unwrap_or_default();
    ProductId::parse(raw).ok_or_else(|| ApiError::NotFound(format!("product {raw} not found")))
}

/// `If-Match: <version>` (the cart's `version`, bare or quoted).
fn if_match(request: &Request) -> Result<Option<u64>, ApiError> {
    let Some(value) = request.headers().get(http::header::IF_MATCH) else { return Ok(None) };
    let raw = value.to_str().unwrap_or("").trim();
    let unquoted = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw);
    unquoted
        .parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::bad_request("If-Match must be the cart's version, a whole number such as \"3\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_if_match(value: &str) -> Request {
        http::Request::builder().header("if-match", value).body(Body::Empty).unwrap()
    }

    #[test]
    fn if_match_takes_the_version_bare_or_quoted() {
        assert_eq!(if_match(&with_if_match("3")).unwrap(), Some(3));
        assert_eq!(if_match(&with_if_match("\"12\"")).unwrap(), Some(12));
        assert_eq!(if_match(&Request::default()).unwrap(), None);
        for bad in ["*", "W/\"3\"", "three", "-1", "\"3"] {
            assert_eq!(if_match(&with_if_match(bad)).unwrap_err().status(), 400, "{bad}");
        }
    }
}

//! The product routes: list and get (anyone, cached), create, update and
//! delete (admin, each invalidating what it changed).

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Number, json};
use time::OffsetDateTime;

use super::query;
use super::views::ProductView;
use crate::app::App;
use crate::cache::generational::Lookup;
use crate::domain::catalog::{MAX_STOCK, category_key, parse_stock, parse_stock_counters};
use crate::domain::{CategoryName, Description, FieldErrors, Money, Product, ProductId, ProductName, StockChange};
use crate::error::ApiError;
use crate::http::{compression, json, json_bytes, no_content, parse_json, path_param, with_location};
use crate::store::{ProductUpdate, StoreError};

/// The scope of every product listing page.
pub const LIST_SCOPE: &str = "products";
const LIST_TTL: Duration = Duration::from_secs(120);
const PRODUCT_TTL: Duration = Duration::from_secs(300);

/// The cache scope of one product.
pub fn product_scope(id: ProductId) -> String {
    format!("product:{id}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewProduct {
    name: String,
    #[serde(default)]
    description: Option<String>,
    price: Number,
    category: String,
    stock: Number,
    #[serde(default)]
    stock_counters: Option<Number>,
}

/// Every field optional. `stock` sets the count; `stockDelta` adds to it
/// (or removes, when negative) atomically with concurrent orders.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProductChanges {
    name: Option<String>,
    description: Option<String>,
    price: Option<Number>,
    category: Option<String>,
    stock: Option<Number>,
    stock_delta: Option<Number>,
    stock_counters: Option<Number>,
}

pub async fn list(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let listing = query::parse(app, &request)?;
    let body = match app.catalog_cache.get(LIST_SCOPE, &listing.cache_key).await {
        Lookup::Hit(body) => body,
        Lookup::Miss { generation } => {
            let page = app.store.list_products(&listing.query).await?;
            let items: Vec<ProductView> = page.items.iter().map(ProductView::from).collect();
            let next = page.next.map(|position| app.cursors.encode(&listing.scope, &position));
            let body = serde_json::to_vec(&json!({ "items": items, "nextCursor": next }))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(generation) = generation {
                app.catalog_cache.fill(LIST_SCOPE, &generation, &listing.cache_key, &body, LIST_TTL);
            }
            body
        }
    };
    json_bytes(StatusCode::OK, body)
}

pub async fn get(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let id = product_id(&request)?;
    let scope = product_scope(id);
    let body = match app.catalog_cache.get(&scope, "json").await {
        Lookup::Hit(body) => body,
        Lookup::Miss { generation } => {
            let product = app.store.product_by_id(id).await?.ok_or_else(not_found)?;
            let body =
                serde_json::to_vec(&ProductView::from(&product)).map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(generation) = generation {
                app.catalog_cache.fill(&scope, &generation, "json", &body, PRODUCT_TTL);
            }
            body
        }
    };
    let etag = strong_etag(&body);
    let held = request.headers().get(http::header::IF_NONE_MATCH).and_then(|value| value.to_str().ok());
    // A 304 names the tag the client holds: the one its coding's 200 had.
    let (mut response, etag) = match held.and_then(|held| matching_tag(held, &etag)) {
        Some(matched) => {
            let mut response = Response::new(Body::Empty);
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            (response, matched)
        }
        None => (json_bytes(StatusCode::OK, body)?, etag),
    };
    let headers = response.headers_mut();
    headers.insert(http::header::ETAG, etag.parse().map_err(|_| ApiError::Internal("etag".into()))?);
    // Clients may keep the body but must revalidate, which If-None-Match
    // makes cheap.
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    Ok(response)
}

pub async fn create(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let body: NewProduct = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", ProductName::parse(&body.name));
    let description = errors.check("description", Description::parse(body.description.as_deref().unwrap_or("")));
    let price = errors.check("price", Money::price_from_json(&body.price));
    let stock = errors.check("stock", parse_stock(&body.stock));
    let stock_counters = match &body.stock_counters {
        Some(raw) => errors.check("stockCounters", parse_stock_counters(raw)),
        None => Some(1),
    };
    let category = existing_category(app, &body.category, &mut errors).await?;
    let (Some(name), Some(description), Some(price), Some(stock), Some(stock_counters), Some(category)) =
        (name, description, price, stock, stock_counters, category)
    else {
        return Err(errors.into());
    };
    let now = OffsetDateTime::now_utc();
    let product = Product {
        id: ProductId::new(),
        name,
        description,
        price,
        category,
        stock,
        stock_counters,
        created_at: now,
        updated_at: now,
    };
    app.store.create_product(&product).await?;
    app.catalog_cache.invalidate(LIST_SCOPE).await;
    tracing::info!(product_id = %product.id, event = "product_created", "product created");
    let response = json(StatusCode::CREATED, &ProductView::from(&product))?;
    Ok(with_location(response, &format!("/api/products/{}", product.id)))
}

pub async fn update(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let id = product_id(&request)?;
    let changes: ProductChanges = parse_json(&request, app.config.max_body_bytes)?;
    let nothing = changes.name.is_none()
        && changes.description.is_none()
        && changes.price.is_none()
        && changes.category.is_none()
        && changes.stock.is_none()
        && changes.stock_delta.is_none()
        && changes.stock_counters.is_none();
    if nothing {
        return Err(ApiError::bad_request("nothing to update"));
    }
    let current = app.store.product_by_id(id).await?.ok_or_else(not_found)?;
    let mut errors = FieldErrors::new();
    let name = changes.name.and_then(|raw| errors.check("name", ProductName::parse(&raw)));
    let description = changes.description.and_then(|raw| errors.check("description", Description::parse(&raw)));
    let price = changes.price.and_then(|raw| errors.check("price", Money::price_from_json(&raw)));
    let category = match changes.category {
        Some(raw) => existing_category(app, &raw, &mut errors).await?,
        None => None,
    };
    let stock = stock_change(changes.stock, changes.stock_delta, &mut errors);
    let stock_counters =
        changes.stock_counters.and_then(|raw| errors.check("stockCounters", parse_stock_counters(&raw)));
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let update = ProductUpdate {
        id,
        name: name.unwrap_or(current.name),
        description: description.unwrap_or(current.description),
        price: price.unwrap_or(current.price),
        category: category.unwrap_or(current.category),
        stock,
        stock_counters: stock_counters.unwrap_or(current.stock_counters),
        updated_at: OffsetDateTime::now_utc(),
    };
    let updated = app.store.update_product(&update).await.map_err(|err| match err {
        StoreError::NotFound => not_found(),
        StoreError::InsufficientStock(_) => ApiError::Conflict("stock cannot go below zero".into()),
        StoreError::StockAboveMaximum => ApiError::Conflict(format!("stock cannot go above {MAX_STOCK}")),
        other => other.into(),
    })?;
    invalidate_product(app, id).await;
    tracing::info!(product_id = %id, event = "product_updated", "product updated");
    json(StatusCode::OK, &ProductView::from(&updated))
}

pub async fn delete(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let id = product_id(&request)?;
    app.store.delete_product(id).await.map_err(|err| match err {
        StoreError::NotFound => not_found(),
        other => other.into(),
    })?;
    invalidate_product(app, id).await;
    tracing::info!(product_id = %id, event = "product_deleted", "product deleted");
    Ok(no_content())
}

/// Makes the product's cached page and every cached listing unreachable.
pub async fn invalidate_product(app: &App, id: ProductId) {
    app.order_queues.restocked(id);
    app.catalog_cache.invalidate(&product_scope(id)).await;
    app.catalog_cache.invalidate(LIST_SCOPE).await;
}

/// After an order moved the product's stock: its own cached page goes at
/// once (the product page's stock is exact). Cached listings stay, so the
/// listing cache survives the order rate: a listing's stock is as of its
/// page's fill (at most [`LIST_TTL`] old), and the change feed's cache
/// consumer empties them when the stock reached or left zero
/// ([`crate::events::consumers::cache_scopes`]).
pub async fn invalidate_stock(app: &App, id: ProductId) {
    app.catalog_cache.invalidate(&product_scope(id)).await;
}

fn not_found() -> ApiError {
    ApiError::NotFound("product not found".into())
}

/// A malformed id names no product: 404, like an unknown one.
fn product_id(request: &Request) -> Result<ProductId, ApiError> {
    path_param(request, "id").and_then(ProductId::parse).ok_or_else(not_found)
}

/// The category named `raw`, in its stored spelling; a field error when
/// there is none.
async fn existing_category(app: &App, raw: &str, errors: &mut FieldErrors) -> Result<Option<CategoryName>, ApiError> {
    let Some(name) = errors.check("category", CategoryName::parse(raw)) else { return Ok(None) };
    match app.store.category_by_key(&category_key(name.as_str())).await? {
        Some(category) => Ok(Some(category.name)),
        None => {
            errors.add("category", "no such category; create it first");
            Ok(None)
        }
    }
}

fn stock_change(stock: Option<Number>, delta: Option<Number>, errors: &mut FieldErrors) -> StockChange {
    match (stock, delta) {
        (Some(_), Some(_)) => {
            errors.add("stockDelta", "send either stock or stockDelta, not both");
            StockChange::Keep
        }
        (Some(stock), None) => errors.check("stock", parse_stock(&stock)).map_or(StockChange::Keep, StockChange::Set),
        (None, Some(delta)) => {
            let bound = i64::try_from(MAX_STOCK).unwrap_or(i64::MAX);
            let parsed = delta.as_i64().filter(|d| d.abs() <= bound);
            let message = format!("must be an integer from -{MAX_STOCK} to {MAX_STOCK}");
            errors.check("stockDelta", parsed.ok_or(message)).map_or(StockChange::Keep, StockChange::Adjust)
        }
        (None, None) => StockChange::Keep,
    }
}

/// A strong validator: FNV-1a over the exact body bytes, so it changes
/// whenever anything the client would see changes.
fn strong_etag(body: &[u8]) -> String {
    let hash = body
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3));
    format!("\"{hash:016x}\"")
}

/// `If-None-Match` uses the weak comparison (RFC 9110 13.1.2): `*`, or any
/// listed tag equal to ours with or without `W/`, in any content coding
/// (see [`compression`]). Returns the listed tag that matched (ours for
/// `*`).
fn matching_tag(header: &str, etag: &str) -> Option<String> {
    header.split(',').map(str::trim).find_map(|tag| match tag {
        "*" => Some(etag.to_owned()),
        tag if compression::same_entity(tag, etag) => Some(tag.trim_start_matches("W/").to_owned()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_the_body() {
        assert_eq!(strong_etag(b"{}"), strong_etag(b"{}"));
        assert_ne!(strong_etag(b"{\"stock\":1}"), strong_etag(b"{\"stock\":2}"));
        assert!(strong_etag(b"x").starts_with('"') && strong_etag(b"x").ends_with('"'));
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = "\"abc\"";
        assert_eq!(matching_tag("\"abc\"", etag).as_deref(), Some(etag));
        assert_eq!(matching_tag("\"x\", W/\"abc\"", etag).as_deref(), Some(etag));
        assert_eq!(matching_tag("*", etag).as_deref(), Some(etag));
        assert_eq!(matching_tag("\"abc-gzip\"", etag).as_deref(), Some("\"abc-gzip\""));
        assert_eq!(matching_tag("\"abd\"", etag), None);
    }
}

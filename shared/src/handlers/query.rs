//! The query string of `GET /api/products`: every parameter validated,
//! unknown ones refused, the cursor checked against the filters; and the
//! `limit` every listing takes.

use std::collections::BTreeMap;

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Request, RequestExt};

use crate::app::App;
use crate::domain::catalog::category_key;
use crate::domain::{CategoryName, FieldErrors, ListPosition, Money, ProductQuery, SearchTerms};
use crate::error::ApiError;

const KNOWN: &[&str] = &["category", "minPrice", "maxPrice", "q", "inStock", "limit", "cursor"];
/// A listing's page size when `limit` is not given, and its largest.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// The request's query parameters, each one not in `known` named in
/// `errors` (a misspelt filter must not silently list everything).
pub fn known_params(request: &Request, known: &[&str], errors: &mut FieldErrors) -> QueryMap {
    let params = request.query_string_parameters();
    for (name, _) in params.iter() {
        if !known.contains(&name) {
            errors.add(name, "unknown query parameter");
        }
    }
    params
}

/// A listing's `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent
/// (or invalid, which `errors` then names).
pub fn page_limit(raw: Option<&str>, errors: &mut FieldErrors) -> usize {
    let Some(raw) = raw else { return DEFAULT_LIMIT };
    let limit = raw.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n));
    errors.check("limit", limit.ok_or(format!("must be an integer from 1 to {MAX_LIMIT}"))).unwrap_or(DEFAULT_LIMIT)
}

/// A validated listing request.
pub struct ListRequest {
    pub query: ProductQuery,
    /// Identifies the filters (not the page): what a cursor is bound to.
    pub scope: String,
    /// Identifies the page too: the cache key of the response.
    pub cache_key: String,
}

pub fn parse(app: &App, request: &Request) -> Result<ListRequest, ApiError> {
    let params: BTreeMap<String, String> = request
        .query_string_parameters_ref()
        .map(|map| map.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    let mut errors = FieldErrors::new();
    for name in params.keys().filter(|name| !KNOWN.contains(&name.as_str())) {
        errors.add(name, "unknown query parameter");
    }
    let get = |name: &str| params.get(name).map(String::as_str);
    let mut query = ProductQuery { limit: DEFAULT_LIMIT, ..Default::default() };
    if let Some(raw) = get("category") {
        query.category = errors.check("category", CategoryName::parse(raw)).map(|name| category_key(name.as_str()));
    }
    query.min_price = get("minPrice").and_then(|raw| errors.check("minPrice", Money::parse_decimal(raw)));
    query.max_price = get("maxPrice").and_then(|raw| errors.check("maxPrice", Money::parse_decimal(raw)));
    if let (Some(min), Some(max)) = (query.min_price, query.max_price)
        && min > max
    {
        errors.add("minPrice", "must not be greater than maxPrice");
    }
    query.in_stock = get("inStock").and_then(|raw| match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => errors.check("inStock", Err("must be true or false".into())),
    });
    if let Some(raw) = get("q") {
        query.terms = errors.check("q", SearchTerms::parse(raw)).unwrap_or_default();
    }
    query.limit = page_limit(get("limit"), &mut errors);
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let scope = format!(
        "category={}&minPrice={}&maxPrice={}&inStock={}&q={}",
        query.category.as_deref().unwrap_or(""),
        query.min_price.map(|m| m.to_string()).unwrap_or_default(),
        query.max_price.map(|m| m.to_string()).unwrap_or_default(),
        query.in_stock.map(|b| b.to_string()).unwrap_or_default(),
        query.terms.patterns().collect::<Vec<_>>().join(","),
    );
    if let Some(cursor) = get("cursor") {
        let position: ListPosition = app.cursors.decode(&scope, cursor)?;
        let kind_matches = matches!(
            (&position, &query.category),
            (ListPosition::Newest { .. }, None) | (ListPosition::Price { .. }, Some(_))
        );
        if !kind_matches {
            return Err(ApiError::bad_request("invalid cursor"));
        }
        query.after = Some(position);
    }
    let cache_key = format!("{scope}&limit={}&cursor={}", query.limit, get("cursor").unwrap_or(""));
    Ok(ListRequest { query, scope, cache_key })
}

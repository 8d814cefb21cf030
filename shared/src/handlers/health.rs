//! `GET /health`: whether the store and the cache answer.

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::app::App;
use crate::error::ApiError;
use crate::http::json;

/// Long enough for a cold DynamoDB connection, short enough for a load
/// balancer's probe.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);
const CACHE_TIMEOUT: Duration = Duration::from_secs(1);

/// 200 `ok` when both answer; 200 `degraded` when only the cache is down
/// (the API works uncached); 503 `unavailable` when the store is down.
pub async fn check(app: &App) -> Result<Response<Body>, ApiError> {
    let (store, cache) = tokio::join!(
        tokio::time::timeout(STORE_TIMEOUT, app.store.ping()),
        tokio::time::timeout(CACHE_TIMEOUT, app.cache.ping()),
    );
    let store_ok = matches!(store, Ok(Ok(())));
    let cache_ok = matches!(cache, Ok(Ok(())));
    if !store_ok {
        tracing::warn!(result = ?store, "health: store is down");
    }
    if !cache_ok {
        tracing::warn!(result = ?cache, "health: cache is down");
    }
    let (status, code) = match (store_ok, cache_ok) {
        (true, true) => ("ok", StatusCode::OK),
        (true, false) => ("degraded", StatusCode::OK),
        (false, _) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
    };
    // This process's catalog cache counters: what a benchmark reads to
    // report the hit ratio.
    let (hits, misses) = app.catalog_cache.counts();
    let word = |ok: bool| if ok { "ok" } else { "down" };
    json(
        code,
        &json!({
            "status": status,
            "checks": { "store": word(store_ok), "cache": word(cache_ok) },
            "backends": { "store": app.store.kind(), "cache": app.cache.kind() },
            "cacheStats": { "hits": hits, "misses": misses },
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

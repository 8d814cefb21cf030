//! `GET /health`: whether the store and the cache answer, and what their
//! circuit breakers say.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::app::App;
use crate::error::ApiError;
use crate::http::json;

/// 200 `ok` when both answer; 200 `degraded` when only the cache is down
/// (the API works uncached); 503 `unavailable` when the store is down. The
/// pings go through the guarded ports: bounded by the request's deadline
/// (the cache's by `CACHE_TIMEOUT_MS`), refused at once by an open breaker,
/// and, once a breaker has cooled down, they are its probe, so `/health`
/// itself brings a recovered dependency back.
pub async fn check(app: &App) -> Result<Response<Body>, ApiError> {
    let (store, cache) = tokio::join!(app.store.ping(), app.cache.ping());
    let store_ok = store.is_ok();
    let cache_ok = cache.is_ok();
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
            "breakers": { "store": app.breakers.store.state().as_str(), "cache": app.breakers.cache.state().as_str() },
            "backends": { "store": app.store.kind(), "cache": app.cache.kind() },
            "cacheStats": { "hits": hits, "misses": misses },
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

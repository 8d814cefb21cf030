//! The entry point of every function binary.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Request, service_fn};

use crate::app::App;
use crate::config::Config;
use crate::routes;
use crate::telemetry;

/// Serves the route of the function `name` under the Lambda runtime. The
/// context (config, clients, keys) is built once per cold start and shared
/// by every invocation the instance serves.
pub async fn run(name: &str) -> Result<(), lambda_http::Error> {
    let route = routes::by_function(name).ok_or_else(|| format!("no route for function `{name}`"))?;
    return_large_buffers_to_the_os();
    let config = Config::from_env()?;
    telemetry::init(&config);
    if std::env::var("ADMIN_EMAILS").is_ok_and(|emails| !emails.trim().is_empty()) {
        tracing::warn!(
            "ADMIN_EMAILS is ignored in Lambda: nothing proves a registrant owns the address; \
             make admins with `shop-local admin grant EMAIL`"
        );
    }
    let app = Arc::new(App::from_config(config).await?);
    warm_up(&app).await;
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(app.handle(route, request).await) }
    }))
    .await
}

/// Opens the store's and the cache's connections (TCP, TLS) during init,
/// which Lambda runs before the first request and with a full CPU, so the
/// first request does not pay for the handshakes. Failures are logged only:
/// a dependency that is down now may be up by the first request.
async fn warm_up(app: &App) {
    let (store, cache) = tokio::join!(app.store.ping(), app.cache.ping());
    if let Err(err) = store {
        tracing::warn!(error = %err, "store warm-up failed");
    }
    if let Err(err) = cache {
        tracing::warn!(error = %err, "cache warm-up failed");
    }
}

/// glibc serves large allocations with mmap, but after the first such
/// buffer is freed it raises that threshold to the buffer's size, and
/// later 19 MiB argon2 buffers then come from the heap and stay resident
/// after they are freed. Fixing the threshold keeps every large buffer
/// mmapped, so freeing it returns it to the OS and an idle instance stays
/// small. (A no-op elsewhere than glibc.)
fn return_large_buffers_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator tunable under glibc's own lock; it
    // touches no memory of ours.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

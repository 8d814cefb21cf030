//! `shop-local`: the whole shop API in one process, on 127.0.0.1.
//!
//! It plays API Gateway for every route of `shop::routes::ROUTES`: it
//! matches the route, builds the HTTP API (payload 2.0) event the function
//! would receive, and hands it to the same `App::handle` the Lambda
//! binaries run. Embedded store and in-process cache by default; DynamoDB
//! and Redis when `STORE=dynamodb` and `CACHE_URL` say so.
//!
//! ```text
//! shop-local                 serve the API (PORT, default 3000)
//! shop-local create-table    create TABLE_NAME in a local DynamoDB, then exit
//! shop-local seed            demo catalog, an admin and a customer (see `seed`)
//! shop-local admin ...       the operator's commands (see `admin`)
//! shop-local reindex         rebuild the search index from the products
//! ```
//!
//! Beside the API's routes it serves `GET /metrics` (Prometheus text
//! format; see `prometheus`), and it runs the asynchronous half in process
//! (`shop::events::local`): domain events from the store's change feed to
//! the consumers, and the reservation expiry.

mod admin;
mod gateway;
mod prometheus;
mod seed;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use shop::config::StoreKind;
use shop::store::dynamodb::{DynamoStore, table};
use shop::{App, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().cloned();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("shop-local: {err}");
            return ExitCode::from(2);
        }
    };
    shop::telemetry::init(&config);
    let result = match command.as_deref() {
        None | Some("serve") => serve(config).await,
        Some("create-table") => create_local_table(&config).await.map(|_| ()),
        Some("admin") => admin::run(&config, &args[1..]).await.map(|report| println!("{report}")),
        Some("seed") => seed_command(&config).await.map(|report| println!("{report}")),
        Some("reindex") => reindex(&config).await.map(|report| println!("{report}")),
        Some(other) => {
            Err(format!("unknown command `{other}`; use `serve`, `create-table`, `seed`, `reindex` or `admin`"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "shop-local failed");
            eprintln!("shop-local: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    if config.store == StoreKind::DynamoDb && config.dynamodb_endpoint.is_some() {
        // A local DynamoDB that is not up yet is no reason to refuse to
        // start: requests get 503 until it answers, as they would in AWS.
        if let Err(err) = create_local_table(&config).await {
            tracing::warn!(error = %err, "could not ensure the local table; serving anyway");
        }
    }
    let port = config.port;
    let metrics = Arc::new(prometheus::PrometheusMetrics::new(config.metrics.clone()));
    let app = App::from_config(config).await.map_err(|e| e.to_string())?;
    let app = Arc::new(app.with_observer(Arc::clone(&metrics) as Arc<dyn shop::metrics::RequestObserver>));
    // The asynchronous half, in process: the change feed (the outbox or the
    // table's stream), the consumers, the reservation expiry.
    shop::events::local::spawn(
        Arc::clone(&app),
        Arc::clone(&metrics) as Arc<dyn shop::events::dispatch::DeliveryObserver>,
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // Registered before "listening" is announced: a SIGTERM sent as soon
    // as the server is up must stop it gracefully, not by the default
    // action.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    tracing::info!(
        addr = %address,
        store = app.store.kind(),
        cache = app.cache.kind(),
        "shop-local listening on http://{address}"
    );
    let scraped = Arc::clone(&app);
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(move || async move { prometheus_text(&metrics, &scraped.breakers) }))
        .fallback(gateway::handle)
        .with_state(app);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal(terminate))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("shop-local stopped");
    Ok(())
}

/// Creates the table in DynamoDB Local. Refuses any endpoint that is not
/// on this machine: in AWS the SAM template owns the table.
async fn create_local_table(config: &Config) -> Result<bool, String> {
    let endpoint = config.dynamodb_endpoint.as_deref().unwrap_or("");
    if !table::is_local_endpoint(endpoint) {
        return Err(format!(
            "refusing to create a table: AWS_ENDPOINT_URL_DYNAMODB (`{endpoint}`) is not an address of this machine"
        ));
    }
    let store = DynamoStore::connect(config).await;
    let created = table::create_if_missing(store.client(), store.table()).await.map_err(|e| e.to_string())?;
    if created {
        tracing::info!(table = store.table(), "created table in local DynamoDB");
    }
    Ok(created)
}

/// `shop-local seed`, with the local table created first on DynamoDB Local.
async fn seed_command(config: &Config) -> Result<String, String> {
    if config.store == StoreKind::DynamoDb && config.dynamodb_endpoint.is_some() {
        create_local_table(config).await?;
    }
    let store = shop::store::connect(config).await.map_err(|err| admin::store_error(config, err))?;
    seed::run(config, store.as_ref()).await
}

/// `shop-local reindex`: every product's search entries written again and
/// entries no product has removed (after a restore, or to repair entries a
/// lost stream batch left behind). Safe while the API serves: the change
/// feed keeps indexing writes made meanwhile.
async fn reindex(config: &Config) -> Result<String, String> {
    let store = shop::store::connect(config).await.map_err(|err| admin::store_error(config, err))?;
    let started = std::time::Instant::now();
    let count = store.rebuild_search_index().await.map_err(|e| e.to_string())?;
    Ok(format!("indexed {count} products in {:.1} s", started.elapsed().as_secs_f64()))
}

/// `GET /metrics`: this process's registry, for a Prometheus scraper.
fn prometheus_text(
    metrics: &prometheus::PrometheusMetrics,
    breakers: &shop::app::Breakers,
) -> axum::response::Response {
    axum::response::Response::builder()
        .header(http::header::CONTENT_TYPE, prometheus::CONTENT_TYPE)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(axum::body::Body::from(metrics.render(breakers)))
        .unwrap_or_default()
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; in-flight requests then finish.
async fn shutdown_signal(mut terminate: tokio::signal::unix::Signal) {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::select! {
        () = interrupt => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

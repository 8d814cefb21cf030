//! The entry point of every function binary.
//!
//! Every binary runs on tokio's current-thread runtime: an instance serves
//! one invocation at a time, and a profile of the multi-threaded runtime
//! (`perf` on `products-get` under the emulator) spent about 40 % of the
//! process's samples in the kernel waking and parking worker threads.

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
    let app = start().await?;
    if init_runs_ahead_of_requests() {
        warm_up(&app).await;
    }
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(app.handle(route, request).await) }
    }))
    .await
}

/// Runs the worker function `name` (see [`crate::workers::WORKERS`]) under
/// the Lambda runtime: the stream publisher, a bus consumer, or the
/// scheduled expiry.
pub async fn run_worker(name: &str) -> Result<(), lambda_http::Error> {
    use lambda_http::LambdaEvent;
    use lambda_http::lambda_runtime;

    use crate::workers::{self, BusEvent, Trigger};

    let worker = workers::by_function(name).ok_or_else(|| format!("no worker function `{name}`"))?;
    let app = start().await?;
    match worker.trigger {
        Trigger::TableStream if name == "search-index" => {
            let store = Arc::new(crate::store::dynamodb::DynamoStore::connect(&app.config).await);
            lambda_runtime::run(lambda_runtime::service_fn(
                move |batch: LambdaEvent<crate::events::stream::StreamEvent>| {
                    let (app, store) = (Arc::clone(&app), Arc::clone(&store));
                    async move {
                        Ok::<_, lambda_http::Error>(
                            workers::index_batch(&store, &app.invalidations, &batch.payload).await,
                        )
                    }
                },
            ))
            .await
        }
        Trigger::TableStream => {
            #[cfg(feature = "eventbridge")]
            {
                let bus = std::env::var("EVENT_BUS_NAME").map_err(|_| "EVENT_BUS_NAME is not set")?;
                let sink = Arc::new(crate::events::eventbridge::EventBridgeSink::new(&bus));
                lambda_runtime::run(lambda_runtime::service_fn(
                    move |batch: LambdaEvent<crate::events::stream::StreamEvent>| {
                        let (app, sink) = (Arc::clone(&app), Arc::clone(&sink));
                        async move {
                            let mapping = app.config.event_mapping();
                            let response =
                                workers::publish_batch(&batch.payload, &mapping, sink.as_ref(), &app.config.metrics)
                                    .await;
                            Ok::<_, lambda_http::Error>(response)
                        }
                    },
                ))
                .await
            }
            #[cfg(not(feature = "eventbridge"))]
            Err("this binary was built without the eventbridge feature".into())
        }
        Trigger::Bus(_) => {
            let consumer = bus_consumer(&app, name)?;
            lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<BusEvent>| {
                let (app, consumer) = (Arc::clone(&app), Arc::clone(&consumer));
                async move {
                    workers::consume(consumer.as_ref(), &event.payload, &app.config.metrics).await?;
                    Ok::<_, lambda_http::Error>(())
                }
            }))
            .await
        }
        Trigger::Queue => {
            #[cfg(feature = "sqs")]
            {
                let queue = Arc::new(crate::webhooks::sqs::SqsQueue::from_env()?);
                let deliverer = Arc::new(crate::webhooks::Deliverer::from_app(&app)?);
                lambda_runtime::run(lambda_runtime::service_fn(move |batch: LambdaEvent<workers::QueueBatch>| {
                    let (queue, deliverer) = (Arc::clone(&queue), Arc::clone(&deliverer));
                    async move {
                        Ok::<_, lambda_http::Error>(
                            workers::deliver_batch(&deliverer, queue.as_ref(), &batch.payload).await,
                        )
                    }
                }))
                .await
            }
            #[cfg(not(feature = "sqs"))]
            Err("this binary was built without the sqs feature".into())
        }
        Trigger::Schedule => {
            lambda_runtime::run(lambda_runtime::service_fn(move |_: LambdaEvent<serde_json::Value>| {
                let app = Arc::clone(&app);
                async move {
                    let sweep = workers::expire(&app, time::OffsetDateTime::now_utc()).await?;
                    Ok::<_, lambda_http::Error>(
                        serde_json::json!({"expired": sweep.expired, "lostRaces": sweep.lost_races}),
                    )
                }
            }))
            .await
        }
    }
}

/// The consumer a bus-triggered worker runs: a standard one, or the
/// webhook fan-out onto the delivery queue.
fn bus_consumer(app: &Arc<App>, name: &str) -> Result<Arc<dyn crate::events::consumers::Consumer>, lambda_http::Error> {
    if let Some(consumer) = crate::events::consumers::by_name(app, name) {
        return Ok(consumer);
    }
    #[cfg(feature = "sqs")]
    if name == "webhooks-fanout" {
        let queue = Arc::new(crate::webhooks::sqs::SqsQueue::from_env()?);
        return Ok(Arc::new(crate::webhooks::FanOut::new(Arc::clone(&app.store), queue)));
    }
    Err(format!("no consumer `{name}` in this binary").into())
}

/// What every function does first, once per cold start: configuration,
/// logs, and the context its invocations share.
async fn start() -> Result<Arc<App>, lambda_http::Error> {
    return_large_buffers_to_the_os();
    let config = Config::from_env()?;
    telemetry::init(&config);
    if std::env::var("ADMIN_EMAILS").is_ok_and(|emails| !emails.trim().is_empty()) {
        tracing::warn!(
            "ADMIN_EMAILS is ignored in Lambda: nothing proves a registrant owns the address; \
             make admins with `shop-local admin grant EMAIL`"
        );
    }
    Ok(Arc::new(App::from_config(config).await?))
}

/// Whether this instance's init runs before any request is waiting for it:
/// provisioned concurrency (and SnapStart) initialise instances ahead of
/// traffic; an on-demand init runs while its first request waits.
///
/// Only then does opening connections during init pay. Measured under the
/// emulator (`load/lambda-measure.sh`), an on-demand cold start with the
/// warm-up took longer in total (init + first request) than without it:
/// the first request needs the same connections either way, and the warm-up
/// adds its own store read.
fn init_runs_ahead_of_requests() -> bool {
    std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE").is_ok_and(|kind| kind != "on-demand")
}

/// Opens the store's and the cache's connections (TCP, TLS, the trusted
/// roots parsed once) during an init that runs ahead of traffic, so that
/// no request pays for the handshakes. Failures are logged only: a
/// dependency that is down now may be up by the first request.
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

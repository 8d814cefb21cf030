//! What the service does, as CloudWatch metrics in the embedded metric
//! format (EMF).
//!
//! API Gateway and Lambda already publish requests, latency, errors and
//! throttles per route and per function. What they cannot see is the
//! business and the cache: orders placed and their value, orders refused
//! for stock, cancellations, registrations, failed logins, catalog cache
//! hits and misses, rate-limited requests, requests a dependency failed.
//! Handlers record those while a request runs ([`count`], [`add`]); at its
//! end the request's totals are written as one EMF line on stdout, which
//! Lambda ships to CloudWatch Logs, where they become metrics: no SDK call,
//! no added latency, no extra permission. A request that recorded nothing
//! writes nothing.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The one dimension every metric carries, so the metrics of all functions
/// add up to the service's.
const SERVICE: &str = "shop-api";

/// A quantity the service records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    CacheHits,
    CacheMisses,
    UsersRegistered,
    LoginsFailed,
    OrdersPlaced,
    /// The total of the orders placed, in the currency's major unit.
    OrderValue,
    OrdersOutOfStock,
    OrdersCancelled,
    RateLimited,
    /// Requests answered 503 because the store (or another dependency) was
    /// down.
    DependencyFailures,
    /// DynamoDB read and write capacity units the request consumed (only
    /// with `DYNAMODB_CONSUMED_CAPACITY=on`).
    ReadCapacityUnits,
    WriteCapacityUnits,
}

impl Metric {
    /// Every metric, for a registry that shows each from the start.
    pub const ALL: [Metric; 12] = [
        Metric::CacheHits,
        Metric::CacheMisses,
        Metric::UsersRegistered,
        Metric::LoginsFailed,
        Metric::OrdersPlaced,
        Metric::OrderValue,
        Metric::OrdersOutOfStock,
        Metric::OrdersCancelled,
        Metric::RateLimited,
        Metric::DependencyFailures,
        Metric::ReadCapacityUnits,
        Metric::WriteCapacityUnits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::CacheHits => "CacheHits",
            Metric::CacheMisses => "CacheMisses",
            Metric::UsersRegistered => "UsersRegistered",
            Metric::LoginsFailed => "LoginsFailed",
            Metric::OrdersPlaced => "OrdersPlaced",
            Metric::OrderValue => "OrderValue",
            Metric::OrdersOutOfStock => "OrdersOutOfStock",
            Metric::OrdersCancelled => "OrdersCancelled",
            Metric::RateLimited => "RateLimited",
            Metric::DependencyFailures => "DependencyFailures",
            Metric::ReadCapacityUnits => "ReadCapacityUnits",
            Metric::WriteCapacityUnits => "WriteCapacityUnits",
        }
    }

    /// CloudWatch's unit: everything is a count but the money.
    fn unit(self) -> &'static str {
        match self {
            Metric::OrderValue => "None",
            _ => "Count",
        }
    }
}

/// What one request recorded, in the order first recorded, and the time it
/// spent waiting for its dependencies (for its log line, not a metric).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded(Vec<(Metric, f64)>, pub Waited);

/// Time a request spent in store and cache calls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Waited {
    pub store: Duration,
    pub cache: Duration,
}

/// A dependency whose calls are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    Store,
    Cache,
}

/// Adds `elapsed` to the current request's time in `dependency`.
pub fn waited(dependency: Dependency, elapsed: Duration) {
    let _ = CURRENT.try_with(|recorded| {
        let waited = &mut recorded.borrow_mut().1;
        match dependency {
            Dependency::Store => waited.store += elapsed,
            Dependency::Cache => waited.cache += elapsed,
        }
    });
}

impl Recorded {
    fn add(&mut self, metric: Metric, value: f64) {
        match self.0.iter_mut().find(|(known, _)| *known == metric) {
            Some((_, total)) => *total += value,
            None => self.0.push((metric, value)),
        }
    }

    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.0.iter().find(|(known, _)| *known == metric).map(|(_, total)| *total)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each metric recorded, with its total.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, f64)> + '_ {
        self.0.iter().copied()
    }
}

/// Sees every request's outcome as it completes: `shop-local`'s
/// Prometheus registry. Lambda has none (its EMF lines are the metrics
/// path, and API Gateway counts requests per route itself).
pub trait RequestObserver: Send + Sync {
    fn observe(
        &self,
        function: &'static str,
        method: &str,
        status: u16,
        latency: std::time::Duration,
        recorded: &Recorded,
    );
}

tokio::task_local! {
    static CURRENT: RefCell<Recorded>;
}

/// Adds one to `metric` for the current request.
pub fn count(metric: Metric) {
    add(metric, 1.0);
}

/// Adds `value` to `metric` for the current request. Outside a request
/// ([`record`]) it does nothing: a store call from a test or a warm-up is
/// no business event.
pub fn add(metric: Metric, value: f64) {
    let _ = CURRENT.try_with(|recorded| recorded.borrow_mut().add(metric, value));
}

/// Runs `request` and returns its output with what it recorded.
pub async fn record<F: Future>(request: F) -> (F::Output, Recorded) {
    CURRENT
        .scope(RefCell::new(Recorded::default()), async {
            let output = request.await;
            let recorded = CURRENT.with(|recorded| recorded.take());
            (output, recorded)
        })
        .await
}

/// Where recorded metrics go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsSink {
    /// EMF lines on stdout under this CloudWatch namespace.
    Emf { namespace: String },
    /// Nowhere (the local default: a terminal has no use for them).
    Off,
}

impl MetricsSink {
    /// Writes one request's metrics; `function` and `request_id` go along
    /// as searchable properties, not dimensions.
    pub fn publish(&self, recorded: &Recorded, function: &str, request_id: &str) {
        let MetricsSink::Emf { namespace } = self else { return };
        let Some(line) = emf_line(namespace, recorded, function, request_id, unix_millis()) else { return };
        write_line(&line);
    }

    /// Writes `BreakerOpened` = 1 for `dependency` (`store` or `cache`) at
    /// once: a breaker opens outside any one request's business. Published
    /// per service (what the template's alarm watches) and per dependency.
    pub fn publish_breaker_opened(&self, dependency: &str) {
        let MetricsSink::Emf { namespace } = self else { return };
        write_line(&breaker_line(namespace, dependency, unix_millis()));
    }

    /// Writes one value of the asynchronous half's metrics (`EventsPublished`,
    /// `ConsumerFailures`, `DeliveryLag`) for `consumer`, published per
    /// service and per consumer: these happen outside any request.
    pub fn publish_event_metric(&self, consumer: &str, metric: EventMetric, value: f64) {
        let MetricsSink::Emf { namespace } = self else { return };
        write_line(&event_metric_line(namespace, consumer, metric, value, unix_millis()));
    }
}

/// One write of a whole line under stdout's lock: never interleaved with a
/// log line.
fn write_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// The metrics of the change feed and its consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventMetric {
    /// Domain events put on the bus (or handed to the local consumers).
    EventsPublished,
    /// Failed deliveries to a consumer (each is retried).
    ConsumerFailures,
    /// Milliseconds from the change to its consumer's success.
    DeliveryLag,
}

impl EventMetric {
    pub fn name(self) -> &'static str {
        match self {
            EventMetric::EventsPublished => "EventsPublished",
            EventMetric::ConsumerFailures => "ConsumerFailures",
            EventMetric::DeliveryLag => "DeliveryLag",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            EventMetric::DeliveryLag => "Milliseconds",
            _ => "Count",
        }
    }
}

/// The EMF document of one event metric value.
pub fn event_metric_line(namespace: &str, consumer: &str, metric: EventMetric, value: f64, millis: u64) -> String {
    single_metric_line(namespace, ("Consumer", consumer), (metric.name(), metric.unit()), json!(value), millis)
}

/// An EMF document of one metric outside any request, published per
/// service and per one more dimension.
fn single_metric_line(
    namespace: &str,
    (dimension, dimension_value): (&str, &str),
    (name, unit): (&str, &str),
    value: Value,
    millis: u64,
) -> String {
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Service"], ["Service", dimension]],
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        }),
    );
    document.insert("Service".into(), SERVICE.into());
    document.insert(dimension.into(), dimension_value.into());
    document.insert(name.into(), value);
    Value::Object(document).to_string()
}

/// The EMF document of one breaker opening.
pub fn breaker_line(namespace: &str, dependency: &str, millis: u64) -> String {
    single_metric_line(namespace, ("Dependency", dependency), ("BreakerOpened", "Count"), json!(1), millis)
}

/// The EMF document of one request, or `None` when nothing was recorded.
pub fn emf_line(namespace: &str, recorded: &Recorded, function: &str, request_id: &str, millis: u64) -> Option<String> {
    if recorded.is_empty() {
        return None;
    }
    let definitions: Vec<Value> =
        recorded.0.iter().map(|(metric, _)| json!({"Name": metric.name(), "Unit": metric.unit()})).collect();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": millis,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["Service"]], "Metrics": definitions}],
        }),
    );
    document.insert("Service".into(), SERVICE.into());
    document.insert("function".into(), function.into());
    document.insert("requestId".into(), request_id.into());
    for (metric, total) in &recorded.0 {
        document.insert(metric.name().into(), json!(total));
    }
    Some(Value::Object(document).to_string())
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_records_what_its_handlers_count_and_nothing_leaks_outside() {
        count(Metric::OrdersPlaced);
        let ((), recorded) = record(async {
            count(Metric::CacheMisses);
            count(Metric::CacheHits);
            count(Metric::CacheHits);
            add(Metric::OrderValue, 12.5);
            add(Metric::OrderValue, 0.25);
        })
        .await;
        assert_eq!(recorded.get(Metric::CacheHits), Some(2.0));
        assert_eq!(recorded.get(Metric::CacheMisses), Some(1.0));
        assert_eq!(recorded.get(Metric::OrderValue), Some(12.75));
        assert_eq!(recorded.get(Metric::OrdersPlaced), None);
    }

    #[tokio::test]
    async fn concurrent_requests_keep_their_own_records() {
        let one = record(async {
            count(Metric::LoginsFailed);
            tokio::task::yield_now().await;
            count(Metric::LoginsFailed);
        });
        let other = record(async {
            tokio::task::yield_now().await;
            count(Metric::UsersRegistered);
        });
        let (((), one), ((), other)) = tokio::join!(one, other);
        assert_eq!(one.get(Metric::LoginsFailed), Some(2.0));
        assert_eq!(one.get(Metric::UsersRegistered), None);
        assert_eq!(other.get(Metric::UsersRegistered), Some(1.0));
    }

    #[test]
    fn the_line_is_an_emf_document_with_every_metric_declared_and_valued() {
        let mut recorded = Recorded::default();
        recorded.add(Metric::OrdersPlaced, 1.0);
        recorded.add(Metric::OrderValue, 42.99);
        let line = emf_line("ShopApi/prod", &recorded, "orders-create", "req-1", 1_700_000_000_000).unwrap();
        assert!(!line.contains('\n'));
        let document: Value = serde_json::from_str(&line).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(directive["Namespace"], "ShopApi/prod");
        assert_eq!(directive["Dimensions"], json!([["Service"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "OrdersPlaced", "Unit": "Count"}, {"Name": "OrderValue", "Unit": "None"}])
        );
        assert_eq!(document["Service"], "shop-api");
        assert_eq!(document["OrdersPlaced"], 1.0);
        assert_eq!(document["OrderValue"], 42.99);
        assert_eq!(document["function"], "orders-create");
        assert_eq!(document["requestId"], "req-1");
    }

    #[test]
    fn a_breaker_opening_is_counted_per_service_and_per_dependency() {
        let document: Value = serde_json::from_str(&breaker_line("ShopApi/prod", "store", 5)).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([["Service"], ["Service", "Dependency"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "BreakerOpened", "Unit": "Count"}]));
        assert_eq!((document["Dependency"].as_str(), document["BreakerOpened"].as_i64()), (Some("store"), Some(1)));
    }

    #[test]
    fn nothing_recorded_writes_nothing() {
        assert_eq!(emf_line("ShopApi", &Recorded::default(), "health", "req", 0), None);
    }
}

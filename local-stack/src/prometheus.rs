//! `GET /metrics` of `shop-local`: requests by route and status, latency
//! histograms by route, cache hits and misses and the business counters of
//! the EMF lines, the change feed's consumers, the circuit breakers, the
//! store's failed calls and webhook attempts by outcome, in Prometheus's
//! text exposition format (0.0.4). `local-stack/monitoring/` has the
//! recording rules and alerts over them.
//!
//! Lambda has no such endpoint: there the EMF lines are the metrics path,
//! and API Gateway and Lambda count requests and latency per route.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use shop::app::Breakers;
use shop::events::Event;
use shop::events::consumers::ConsumerError;
use shop::events::dispatch::{DeliveryObserver, MetricsObserver};
use shop::metrics::{Metric, MetricsSink, Recorded, RequestObserver};
use shop::resilience::{BreakerState, store_failures};
use shop::webhooks::attempts_by_state;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Default)]
struct Histogram {
    /// Observations at or under each bound of [`BUCKETS`] (not cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    /// (function, method, status) -> requests.
    requests: BTreeMap<(&'static str, String, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    business: BTreeMap<&'static str, f64>,
    /// (function, "hit" | "miss") -> catalog cache lookups its requests made.
    cache: BTreeMap<(&'static str, &'static str), f64>,
    /// Events mapped from the change feed and handed to the consumers.
    published: u64,
    /// Completed reads of the change feed.
    feed_reads: u64,
    /// Per consumer of the change feed: deliveries, failed attempts, lags.
    consumers: BTreeMap<String, ConsumerStats>,
}

/// Lags kept per consumer for the quantiles: the latest this many.
const LAG_WINDOW: usize = 10_000;

#[derive(Default)]
struct ConsumerStats {
    delivered: u64,
    failed: u64,
    lag_sum: f64,
    /// Ring buffer of the latest lags, in seconds.
    lags: Vec<f64>,
    next: usize,
}

/// The process's registry; one short lock per request.
pub struct PrometheusMetrics {
    registry: Mutex<Registry>,
    /// Logs failed deliveries, and writes their EMF lines when `METRICS=emf`.
    events: MetricsObserver,
}

impl PrometheusMetrics {
    pub fn new(sink: MetricsSink) -> Self {
        PrometheusMetrics { registry: Mutex::default(), events: MetricsObserver { sink } }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DeliveryObserver for PrometheusMetrics {
    fn published(&self, count: usize) {
        self.events.published(count);
        self.registry().published += count as u64;
    }

    fn feed_read(&self) {
        self.registry().feed_reads += 1;
    }

    fn delivered(&self, consumer: &str, event: &Event, lag: Duration) {
        self.events.delivered(consumer, event, lag);
        let mut registry = self.registry();
        let stats = registry.consumers.entry(consumer.to_owned()).or_default();
        stats.delivered += 1;
        stats.lag_sum += lag.as_secs_f64();
        if stats.lags.len() < LAG_WINDOW {
            stats.lags.push(lag.as_secs_f64());
        } else {
            let slot = stats.next;
            stats.lags[slot] = lag.as_secs_f64();
        }
        stats.next = (stats.next + 1) % LAG_WINDOW;
    }

    fn failed(&self, consumer: &str, event: &Event, error: &ConsumerError, attempt: u32) {
        self.events.failed(consumer, event, error, attempt);
        self.registry().consumers.entry(consumer.to_owned()).or_default().failed += 1;
    }
}

impl RequestObserver for PrometheusMetrics {
    fn observe(&self, function: &'static str, method: &str, status: u16, latency: Duration, recorded: &Recorded) {
        let mut registry = self.registry();
        *registry.requests.entry((function, method.to_owned(), status)).or_default() += 1;
        let seconds = latency.as_secs_f64();
        let histogram = registry.latency.entry(function).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.counts[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
        for (metric, value) in recorded.iter() {
            *registry.business.entry(metric.name()).or_default() += value;
            let result = match metric {
                Metric::CacheHits => "hit",
                Metric::CacheMisses => "miss",
                _ => continue,
            };
            *registry.cache.entry((function, result)).or_default() += value;
        }
    }
}

impl PrometheusMetrics {
    /// The exposition of everything counted so far, with the state of
    /// `breakers` and the process's store failures and webhook attempts.
    pub fn render(&self, breakers: &Breakers) -> String {
        let registry = self.registry();
        let mut out = String::new();
        header(
            &mut out,
            "shop_http_requests_total",
            "counter",
            "Requests answered, by route (its function), method and status.",
        );
        for ((function, method, status), count) in &registry.requests {
            let labels = format!("route=\"{}\",method=\"{}\",status=\"{status}\"", escape(function), escape(method));
            let _ = writeln!(out, "shop_http_requests_total{{{labels}}} {count}");
        }
        header(&mut out, "shop_http_request_duration_seconds", "histogram", "Time to answer, by route (its function).");
        for (function, histogram) in &registry.latency {
            let route = format!("route=\"{}\"", escape(function));
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ =
                    writeln!(out, "shop_http_request_duration_seconds_bucket{{{route},le=\"{bound}\"}} {cumulative}");
            }
            let _ =
                writeln!(out, "shop_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "shop_http_request_duration_seconds_sum{{{route}}} {}", histogram.sum);
            let _ = writeln!(out, "shop_http_request_duration_seconds_count{{{route}}} {}", histogram.count);
        }
        for metric in Metric::ALL {
            let name = format!("shop_{}_total", snake_case(metric.name()));
            header(
                &mut out,
                &name,
                "counter",
                &format!("What the EMF metric {} counts (see docs/operations.md#metrics).", metric.name()),
            );
            let value = registry.business.get(metric.name()).copied().unwrap_or(0.0);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "shop_cache_lookups_total",
            "counter",
            "Catalog cache lookups, by route (its function) and result (hit or miss).",
        );
        for ((function, result), count) in &registry.cache {
            let _ =
                writeln!(out, "shop_cache_lookups_total{{route=\"{}\",result=\"{result}\"}} {count}", escape(function));
        }
        header(&mut out, "shop_event_feed_reads_total", "counter", "Completed reads of the change feed.");
        let _ = writeln!(out, "shop_event_feed_reads_total {}", registry.feed_reads);
        render_consumers(&mut out, registry.published, &registry.consumers);
        render_dependencies(&mut out, breakers);
        render_webhooks(&mut out);
        out
    }
}

/// The breakers (open now, times opened) and the store's failed calls.
fn render_dependencies(out: &mut String, breakers: &Breakers) {
    header(out, "shop_circuit_breaker_open", "gauge", "1 while the dependency's breaker is open or half-open.");
    for breaker in [&breakers.store, &breakers.cache, &breakers.payments] {
        let open = u8::from(breaker.state() != BreakerState::Closed);
        let _ = writeln!(out, "shop_circuit_breaker_open{{dependency=\"{}\"}} {open}", breaker.dependency());
    }
    header(out, "shop_circuit_breaker_opened_total", "counter", "Times the dependency's breaker opened.");
    for breaker in [&breakers.store, &breakers.cache, &breakers.payments] {
        let (dependency, opened) = (breaker.dependency(), breaker.times_opened());
        let _ = writeln!(out, "shop_circuit_breaker_opened_total{{dependency=\"{dependency}\"}} {opened}");
    }
    let failures = store_failures();
    header(
        out,
        "shop_store_failures_total",
        "counter",
        "Failed store calls: unavailable (unreachable, throttled, timed out) or internal (an error answer).",
    );
    let _ = writeln!(out, "shop_store_failures_total{{kind=\"unavailable\"}} {}", failures.unavailable);
    let _ = writeln!(out, "shop_store_failures_total{{kind=\"internal\"}} {}", failures.internal);
}

/// Webhook delivery attempts, by the state each left its delivery in.
fn render_webhooks(out: &mut String) {
    header(
        out,
        "shop_webhook_attempts_total",
        "counter",
        "Webhook delivery attempts, by outcome: delivered, retrying (another attempt scheduled), failed (the last).",
    );
    for (state, count) in attempts_by_state() {
        let _ = writeln!(out, "shop_webhook_attempts_total{{state=\"{}\"}} {count}", state.as_str());
    }
}

/// The change feed's consumers: deliveries, failed attempts (each retried)
/// and the lag from a change to its delivery, as a summary of the latest
/// deliveries.
fn render_consumers(out: &mut String, published: u64, consumers: &BTreeMap<String, ConsumerStats>) {
    header(out, "shop_events_published_total", "counter", "Domain events mapped from the change feed.");
    let _ = writeln!(out, "shop_events_published_total {published}");
    header(out, "shop_event_deliveries_total", "counter", "Domain events delivered, by consumer.");
    for (consumer, stats) in consumers {
        let _ = writeln!(out, "shop_event_deliveries_total{{consumer=\"{}\"}} {}", escape(consumer), stats.delivered);
    }
    header(
        out,
        "shop_event_delivery_failures_total",
        "counter",
        "Failed delivery attempts (each is retried), by consumer.",
    );
    for (consumer, stats) in consumers {
        let _ =
            writeln!(out, "shop_event_delivery_failures_total{{consumer=\"{}\"}} {}", escape(consumer), stats.failed);
    }
    header(
        out,
        "shop_event_delivery_lag_seconds",
        "summary",
        "From a change to its delivery, by consumer (quantiles of the latest 10000).",
    );
    for (consumer, stats) in consumers {
        let label = format!("consumer=\"{}\"", escape(consumer));
        let mut sorted = stats.lags.clone();
        sorted.sort_by(f64::total_cmp);
        for quantile in [0.5, 0.9, 0.99] {
            if let Some(value) = nearest_rank(&sorted, quantile) {
                let _ = writeln!(out, "shop_event_delivery_lag_seconds{{{label},quantile=\"{quantile}\"}} {value}");
            }
        }
        let _ = writeln!(out, "shop_event_delivery_lag_seconds_sum{{{label}}} {}", stats.lag_sum);
        let _ = writeln!(out, "shop_event_delivery_lag_seconds_count{{{label}}} {}", stats.delivered);
    }
}

/// The nearest-rank quantile of sorted values.
fn nearest_rank(sorted: &[f64], quantile: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the format wants it: backslash, quote and newline
/// escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `OrdersPlaced` -> `orders_placed`.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(ch.to_ascii_lowercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_values_follow_the_format() {
        assert_eq!(snake_case("OrdersPlaced"), "orders_placed");
        assert_eq!(snake_case("CacheHits"), "cache_hits");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    fn breakers() -> Breakers {
        let settings = shop::resilience::BreakerSettings { failure_threshold: 1, cooldown: Duration::from_secs(60) };
        Breakers {
            store: shop::resilience::CircuitBreaker::new("store", settings, MetricsSink::Off),
            cache: shop::resilience::CircuitBreaker::new("cache", settings, MetricsSink::Off),
            payments: shop::resilience::CircuitBreaker::new("stripe", settings, MetricsSink::Off),
        }
    }

    #[test]
    fn a_request_lands_in_its_buckets_cumulatively() {
        let metrics = PrometheusMetrics::new(MetricsSink::Off);
        metrics.observe("health", "GET", 200, Duration::from_millis(3), &Recorded::default());
        let text = metrics.render(&breakers());
        assert!(text.contains("shop_http_requests_total{route=\"health\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("shop_http_request_duration_seconds_bucket{route=\"health\",le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("shop_http_request_duration_seconds_bucket{route=\"health\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("shop_http_request_duration_seconds_bucket{route=\"health\",le=\"+Inf\"} 1"), "{text}");
    }

    #[tokio::test]
    async fn cache_lookups_are_counted_by_route_and_result() {
        let metrics = PrometheusMetrics::new(MetricsSink::Off);
        let lookups = |hits: usize, misses: usize| async move {
            for _ in 0..hits {
                shop::metrics::count(Metric::CacheHits);
            }
            for _ in 0..misses {
                shop::metrics::count(Metric::CacheMisses);
            }
        };
        for (route, hits, misses) in [("products-list", 2, 1), ("products-list", 1, 0), ("products-get", 0, 1)] {
            let ((), recorded) = shop::metrics::record(lookups(hits, misses)).await;
            metrics.observe(route, "GET", 200, Duration::from_millis(1), &recorded);
        }
        let text = metrics.render(&breakers());
        for line in [
            "shop_cache_lookups_total{route=\"products-list\",result=\"hit\"} 3",
            "shop_cache_lookups_total{route=\"products-list\",result=\"miss\"} 1",
            "shop_cache_lookups_total{route=\"products-get\",result=\"miss\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(!text.contains("route=\"products-get\",result=\"hit\""), "{text}");
    }

    #[tokio::test]
    async fn an_open_breaker_shows_as_open_and_counted() {
        let (metrics, breakers) = (PrometheusMetrics::new(MetricsSink::Off), breakers());
        breakers.cache.admit().unwrap().failed();
        let text = metrics.render(&breakers);
        for line in [
            "shop_circuit_breaker_open{dependency=\"cache\"} 1",
            "shop_circuit_breaker_open{dependency=\"store\"} 0",
            "shop_circuit_breaker_opened_total{dependency=\"cache\"} 1",
            "shop_circuit_breaker_opened_total{dependency=\"store\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        for family in
            ["shop_store_failures_total{kind=\"unavailable\"}", "shop_webhook_attempts_total{state=\"failed\"}"]
        {
            assert!(text.contains(family), "{family} in {text}");
        }
    }
}

//! `GET /metrics` of `shop-local`: requests by route and status, latency
//! histograms by route, cache hits and misses and the business counters of
//! the EMF lines, in Prometheus's text exposition format (0.0.4).
//!
//! Lambda has no such endpoint: there the EMF lines are the metrics path,
//! and API Gateway and Lambda count requests and latency per route.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use shop::metrics::{Metric, Recorded, RequestObserver};

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
}

/// The process's registry; one short lock per request.
#[derive(Default)]
pub struct PrometheusMetrics {
    registry: Mutex<Registry>,
}

impl RequestObserver for PrometheusMetrics {
    fn observe(&self, function: &'static str, method: &str, status: u16, latency: Duration, recorded: &Recorded) {
        let mut registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        }
    }
}

impl PrometheusMetrics {
    /// The exposition of everything counted so far.
    pub fn render(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        header(&mut out, "shop_http_requests_total", "counter", "Requests answered, by route (its function), method and status.");
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
                let _ = writeln!(out, "shop_http_request_duration_seconds_bucket{{{route},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "shop_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "shop_http_request_duration_seconds_sum{{{route}}} {}", histogram.sum);
            let _ = writeln!(out, "shop_http_request_duration_seconds_count{{{route}}} {}", histogram.count);
        }
        for metric in Metric::ALL {
            let name = format!("shop_{}_total", snake_case(metric.name()));
            header(&mut out, &name, "counter", &format!("What the EMF metric {} counts (see the README's Metrics).", metric.name()));
            let value = registry.business.get(metric.name()).copied().unwrap_or(0.0);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
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

    #[test]
    fn a_request_lands_in_its_buckets_cumulatively() {
        let metrics = PrometheusMetrics::default();
        metrics.observe("health", "GET", 200, Duration::from_millis(3), &Recorded::default());
        let text = metrics.render();
        assert!(text.contains("shop_http_requests_total{route=\"health\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("shop_http_request_duration_seconds_bucket{route=\"health\",le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("shop_http_request_duration_seconds_bucket{route=\"health\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("shop_http_request_duration_seconds_bucket{route=\"health\",le=\"+Inf\"} 1"), "{text}");
    }
}

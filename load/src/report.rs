//! The report: percentiles from HDR histograms fed by goose's microsecond
//! buckets (coordinated-omission corrected), per scenario and overall; the
//! verdict against targets; the ceiling; the original system's figures.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use goose::metrics::GooseMetrics;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::ceiling::Ceiling;
use crate::options::{Options, Weights};

/// The original's targets: p95 under 1 s, over 50 req/s, under 1 % errors.
const TARGET_P95_MS: f64 = 1000.0;
const TARGET_RPS: f64 = 50.0;
const TARGET_ERROR_RATE: f64 = 0.01;

#[derive(Debug, Serialize)]
pub struct Latency {
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub success_rate: f64,
    pub latency_ms: Latency,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub targets: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub profile: String,
    pub base_url: String,
    pub users: usize,
    pub duration_s: f64,
    pub weights: Weights,
    /// `requests`, `failures`, `rps`, `success_rate`, `latency_ms` at top level.
    #[serde(flatten)]
    pub overall: Figures,
    pub scenarios: BTreeMap<String, Figures>,
    /// Per request name (`scenario: request`).
    pub requests_by_name: BTreeMap<String, Figures>,
    /// Failed requests by status code, and transport errors by message.
    pub errors: BTreeMap<String, u64>,
    pub ceiling: Ceiling,
    pub ceiling_rps: f64,
    pub achieved_fraction: f64,
    pub verdict: Verdict,
    /// The flash sale's outcome, when the profile ran it.
    pub flash_sale: Option<FlashSale>,
}

/// Exactly `units` orders must win, every other buyer get a 409.
#[derive(Debug, Serialize)]
pub struct FlashSale {
    pub units: u64,
    pub won: u64,
    pub sold_out: u64,
    /// 429s: a buyer who got no turn in time, asked again after its
    /// `Retry-After` (until a 201 or a 409, or out of retries).
    pub busy: u64,
    /// Anything else (5xx, timeouts), and buyers still busy after every
    /// retry.
    pub other: u64,
    pub exact: bool,
}

impl FlashSale {
    pub fn tally(units: u64) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let won = crate::scenarios::FLASH_WON.load(Relaxed);
        let sold_out = crate::scenarios::FLASH_SOLD_OUT.load(Relaxed);
        let busy = crate::scenarios::FLASH_BUSY.load(Relaxed);
        let other = crate::scenarios::FLASH_OTHER.load(Relaxed);
        FlashSale { units, won, sold_out, busy, other, exact: won == units && other == 0 }
    }
}

struct Tally {
    histogram: Histogram<u64>,
    requests: u64,
    failures: u64,
}

impl Tally {
    fn new() -> Self {
        Tally { histogram: Histogram::new(3).expect("3 significant digits"), requests: 0, failures: 0 }
    }

    fn figures(&self, seconds: f64) -> Figures {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.histogram;
        let empty = h.is_empty();
        Figures {
            requests: self.requests,
            failures: self.failures,
            rps: self.requests as f64 / seconds.max(1e-9),
            success_rate: if self.requests == 0 { 0.0 } else { 1.0 - self.failures as f64 / self.requests as f64 },
            latency_ms: Latency {
                avg: if empty { 0.0 } else { h.mean() / 1000.0 },
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
        }
    }
}

impl Report {
    pub fn build(options: &Options, metrics: &GooseMetrics, ceiling: &Ceiling) -> Self {
        let seconds = metrics.duration.max(1) as f64;
        let mut overall = Tally::new();
        let mut scenarios: BTreeMap<String, Tally> = BTreeMap::new();
        let mut names: BTreeMap<String, Tally> = BTreeMap::new();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for (key, aggregate) in metrics.requests.iter() {
            let name = key.split_once(' ').map_or(key.as_str(), |(_, name)| name).to_owned();
            let scenario = name.split(':').next().unwrap_or(&name).trim().to_owned();
            // The corrected timings when goose added synthetic ones for
            // stalls (coordinated omission), the raw timings otherwise.
            let timings = aggregate.coordinated_omission_data.as_ref().unwrap_or(&aggregate.raw_data);
            let requests = (aggregate.success_count + aggregate.fail_count) as u64;
            for tally in [
                &mut overall,
                scenarios.entry(scenario).or_insert_with(Tally::new),
                names.entry(name).or_insert_with(Tally::new),
            ] {
                for (bucket_us, count) in timings.times_us.iter() {
                    let _ = tally.histogram.record_n((*bucket_us).max(1), *count as u64);
                }
                tally.requests += requests;
                tally.failures += aggregate.fail_count as u64;
            }
            for (status, count) in &aggregate.status_code_counts {
                if !(200..300).contains(status) {
                    *errors.entry(format!("status {status}")).or_default() += *count as u64;
                }
            }
        }
        for error in metrics.errors.values() {
            if error.error.contains("status") {
                continue; // counted by status above
            }
            *errors.entry(error.error.clone()).or_default() += error.occurrences as u64;
        }
        let total = overall.figures(seconds);
        let registrations = ["registration: register", "shopping: sign up"]
            .iter()
            .map(|name| names.get(*name).map_or(0, |t| t.requests))
            .sum::<u64>();
        let hashing_share = if total.requests == 0 { 0.0 } else { registrations as f64 / total.requests as f64 };
        let ceiling_rps = ceiling.for_mix(hashing_share);
        let error_rate = 1.0 - total.success_rate;
        let passed = total.latency_ms.p95 < TARGET_P95_MS && total.rps > TARGET_RPS && error_rate < TARGET_ERROR_RATE;
        let targets = format!(
            "p95 {:.0} ms < {TARGET_P95_MS:.0} ms: {}; {:.1} req/s > {TARGET_RPS:.0}: {}; errors {:.2} % < {:.0} %: {}",
            total.latency_ms.p95,
            yes(total.latency_ms.p95 < TARGET_P95_MS),
            total.rps,
            yes(total.rps > TARGET_RPS),
            error_rate * 100.0,
            TARGET_ERROR_RATE * 100.0,
            yes(error_rate < TARGET_ERROR_RATE),
        );
        Report {
            profile: options.profile.to_string(),
            base_url: options.base_url.clone(),
            users: options.users,
            duration_s: seconds,
            weights: options.weights,
            scenarios: scenarios.iter().map(|(k, t)| (k.clone(), t.figures(seconds))).collect(),
            requests_by_name: names.iter().map(|(k, t)| (k.clone(), t.figures(seconds))).collect(),
            errors,
            ceiling: ceiling.clone(),
            ceiling_rps,
            achieved_fraction: if ceiling_rps > 0.0 { total.rps / ceiling_rps } else { 0.0 },
            verdict: Verdict { passed, targets },
            overall: total,
            flash_sale: None,
        }
    }

    pub fn print(&self) {
        println!(
            "\n{} profile, {} users, {:.0} s measured (after ramp-up), against {}",
            self.profile, self.users, self.duration_s, self.base_url
        );
        println!(
            "{:<22} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "", "requests", "fails", "req/s", "avg ms", "p50", "p95", "p99", "max"
        );
        let row = |name: &str, f: &Figures| {
            println!(
                "{:<22} {:>9} {:>8} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                name,
                f.requests,
                f.failures,
                f.rps,
                f.latency_ms.avg,
                f.latency_ms.p50,
                f.latency_ms.p95,
                f.latency_ms.p99,
                f.latency_ms.max
            );
        };
        for (name, figures) in &self.requests_by_name {
            row(&format!("  {name}"), figures);
        }
        for (name, figures) in &self.scenarios {
            row(name, figures);
        }
        row("ALL", &self.overall);
        println!("success rate {:.2} %", self.overall.success_rate * 100.0);
        if !self.errors.is_empty() {
            println!("errors: {:?}", self.errors);
        }
        println!(
            "ceiling for this mix on this machine: {:.0} req/s ({:.1} argon2 hashes/s on {} cores, {:.0} req/s GET /health); achieved {:.0} %",
            self.ceiling_rps,
            self.ceiling.argon2_per_second,
            self.ceiling.cores,
            self.ceiling.health_rps,
            self.achieved_fraction * 100.0
        );
        println!(
            "original (published): 61.33 req/s, 75 % success, 796 ms average at 50 users; \
             520-600 req/s, p95 698-902 ms at 200 users after tuning"
        );
        if let Some(sale) = &self.flash_sale {
            println!(
                "flash sale: {} units, {} orders won, {} sold out (409), {} busy (429, asked again), {} other answers: {}",
                sale.units,
                sale.won,
                sale.sold_out,
                sale.busy,
                sale.other,
                if sale.exact { "exact" } else { "NOT EXACT" }
            );
        }
        println!("{}: {}", if self.verdict.passed { "PASS" } else { "FAIL" }, self.verdict.targets);
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// A progress bar on stderr, one redraw a second, until aborted.
pub async fn progress(total_seconds: u64) {
    let started = std::time::Instant::now();
    loop {
        let elapsed = started.elapsed().as_secs().min(total_seconds);
        let width = 40;
        let filled = (elapsed * width / total_seconds.max(1)) as usize;
        eprint!("\r[{}{}] {elapsed:>4}/{total_seconds} s", "=".repeat(filled), " ".repeat(width as usize - filled));
        let _ = std::io::stderr().flush();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

//! `shop-load`: the shop API's load tester.
//!
//! A weighted mix of scenarios (registration, browsing, ordering, health,
//! shopping: a cart filled, checked out and, when the shop takes payments,
//! paid)
//! run by goose against any base URL, after a setup phase that creates
//! what the scenarios need through the API itself. The report gives
//! throughput, success rate and latency percentiles (overall and per
//! scenario), a pass/fail line against targets, the ceiling this machine
//! allows for the mix, and the original system's published figures.
//!
//! ```text
//! shop-load --base-url URL --profile normal|stress|spike|browse|checkout
//!           [--users N] [--duration SECONDS] [--ramp-up SECONDS] [--json FILE]
//!           [--weights REG,BROWSE,ORDER,HEALTH[,SHOP[,SEARCH]]] [--admin-email EMAIL] [--catalog N]
//! ```
//!
//! # Layout
//!
//! - `options`: the command line and the profiles.
//! - `setup`: admin, categories, products and signed-in customers.
//! - `scenarios`: the goose scenarios and their transactions.
//! - `ceiling`: argon2 hashes/s on all cores and `GET /health` throughput.
//! - `report`: percentiles (HDR histograms), the verdict, JSON.

mod ceiling;
mod options;
mod report;
mod scenarios;
mod setup;

use std::process::ExitCode;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options::Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("shop-load: {message}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(passed) => {
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("shop-load: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(options: options::Options) -> Result<bool, String> {
    eprintln!(
        "shop-load: profile {} against {}: {} users, {} s ramp-up, {} s",
        options.profile, options.base_url, options.users, options.ramp_up, options.duration
    );
    let fixtures = setup::prepare(&options).await?;
    eprintln!(
        "setup: {} products in {} categories, {} signed-in customers",
        fixtures.products.len(),
        setup::CATEGORIES.len(),
        fixtures.customer_tokens.len()
    );
    let ceiling = ceiling::measure(&options.base_url, Duration::from_secs(options.ceiling_seconds)).await?;
    eprintln!(
        "ceiling: {:.1} argon2 hashes/s on {} cores, {:.0} req/s GET /health",
        ceiling.argon2_per_second, ceiling.cores, ceiling.health_rps
    );
    if options.settle > 0 {
        eprintln!("settling: the attack starts in {} s", options.settle);
        tokio::time::sleep(Duration::from_secs(options.settle)).await;
    }
    scenarios::install(fixtures);
    let progress = tokio::spawn(report::progress(options.ramp_up + options.duration));
    let metrics = scenarios::attack(&options).await?;
    progress.abort();
    eprintln!();
    let mut report = report::Report::build(&options, &metrics, &ceiling);
    if options.weights.flash_sale > 0 {
        report.flash_sale = Some(report::FlashSale::tally(options.units));
    }
    report.print();
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?)
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        eprintln!("report written to {path}");
    }
    // A flash sale passes when it was exact, whatever its latency.
    Ok(report.flash_sale.as_ref().map_or(report.verdict.passed, |sale| sale.exact))
}

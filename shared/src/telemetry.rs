//! Logging: JSON lines (CloudWatch Logs Insights reads them as fields) with
//! the request id from the current span on every line.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. Calling it twice is harmless (tests).
/// `LOG_LEVEL` takes `info`, or per-target levels like `shop=debug,warn`
/// (`Targets` syntax: no regex engine in the Lambda binaries).
pub fn init(config: &Config) {
    let filter: Targets =
        config.log_level.parse().unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stdout);
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Pretty => builder.finish().with(filter).try_init(),
    };
}

//! Configuration from the environment, parsed once at start.
//!
//! Every variable has a default that serves a laptop; a value that is set
//! but cannot be parsed stops the start with a message naming the variable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::metrics::MetricsSink;
use crate::resilience::BreakerSettings;

/// Which store adapter serves the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// redb under `DATA_DIR`: no server, the default for a laptop.
    Embedded,
    /// One DynamoDB table (`TABLE_NAME`), in AWS or DynamoDB Local.
    DynamoDb,
}

/// Who takes the money for orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentProvider {
    /// No payments: an admin confirms a pending order (cash on delivery,
    /// invoices).
    None,
    /// Stripe PaymentIntents; only a payment confirms an order.
    Stripe,
}

/// Stripe's keys and where its API is.
#[derive(Clone, Debug, Default)]
pub struct StripeSettings {
    /// `STRIPE_SECRET_KEY` (`sk_...`); never logged.
    pub secret_key: Option<String>,
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_...`); never logged.
    pub webhook_secret: Option<String>,
    /// `STRIPE_SECRETS_ARN`: a Secrets Manager secret holding both, as JSON
    /// `{"secretKey": ..., "webhookSecret": ...}`, read once per cold start
    /// (how the template passes them: never a plain environment value).
    pub secrets_arn: Option<String>,
    /// `STRIPE_API_BASE`, default Stripe's API; the tests' stateful fake.
    pub api_base: String,
}

/// Stripe's API.
pub const STRIPE_API: &str = "https://api.stripe.com";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, what CloudWatch Logs Insights queries.
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

impl LogFormat {
    /// What a process writes when `LOG_FORMAT` is unset: lines a person
    /// reads at a terminal, JSON for a log pipeline (and always in Lambda,
    /// where CloudWatch Logs Insights parses it).
    pub fn default_for(in_lambda: bool, stdout_is_terminal: bool) -> Self {
        if stdout_is_terminal && !in_lambda { LogFormat::Pretty } else { LogFormat::Json }
    }
}

/// Limits of the fixed-window rate limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Length of one counting window (`RATE_LIMIT_WINDOW_SECONDS`).
    pub window: Duration,
    /// Requests a client IP may make to `/api` routes outside `/api/auth`
    /// in one window (`RATE_LIMIT_MAX`).
    pub general_max: u64,
    /// Requests a client IP may make to `/api/auth` routes in one window
    /// (`AUTH_RATE_LIMIT_MAX`); lower, since these routes hash passwords.
    pub auth_max: u64,
}

/// The whole configuration of one process (a Lambda instance or the local
/// gateway).
#[derive(Clone, Debug)]
pub struct Config {
    /// Port of the local gateway (`PORT`, default 3000); unused in Lambda.
    pub port: u16,
    /// Store adapter (`STORE`: `embedded` or `dynamodb`).
    pub store: StoreKind,
    /// Folder of the embedded store and of the generated local JWT secret
    /// (`DATA_DIR`, default `.data`).
    pub data_dir: PathBuf,
    /// The one DynamoDB table (`TABLE_NAME`, default `shop`).
    pub table_name: String,
    /// A DynamoDB endpoint override (`AWS_ENDPOINT_URL_DYNAMODB`, else
    /// `AWS_ENDPOINT_URL`, the SDKs' own variables): DynamoDB Local, or
    /// LocalStack, which sets the second in every function.
    pub dynamodb_endpoint: Option<String>,
    /// `redis://` or `rediss://` URL of the cache (`CACHE_URL`); unset or
    /// empty means the in-process cache.
    pub cache_url: Option<String>,
    /// Prefix of every cache key (`CACHE_KEY_PREFIX`, default `shop`), so
    /// that stages or test servers sharing one Redis never see each other's
    /// entries or rate-limit counters.
    pub cache_key_prefix: String,
    /// HS256 signing secret (`JWT_SECRET`). Never logged. When unset outside
    /// Lambda, a random one is generated once and kept in `DATA_DIR`.
    pub jwt_secret: Option<String>,
    /// Lifetime of an issued token (`JWT_TTL_SECONDS`, default 1 day).
    pub jwt_ttl: Duration,
    /// Rate limits per client IP.
    pub rate_limit: RateLimitConfig,
    /// Emails that register as admins (`ADMIN_EMAILS`, comma-separated,
    /// compared lower-cased). Honoured only outside Lambda: in a deployed
    /// stack nothing proves a registrant owns the address, so the first
    /// admin is made with `shop-local admin grant` instead.
    pub admin_emails: Vec<String>,
    /// Failed logins per email that block it (`LOGIN_FAILURES_MAX`, default
    /// 10) for the rest of a window of `LOGIN_FAILURES_WINDOW_SECONDS`
    /// (default 900), whatever the source IP.
    pub login_failures_max: u64,
    pub login_failures_window: Duration,
    /// `tracing` filter directive (`LOG_LEVEL`, default `info`).
    pub log_level: String,
    /// Log line format (`LOG_FORMAT`: `json` or `pretty`; by default
    /// `pretty` for a person at a terminal, `json` otherwise and always in
    /// Lambda).
    pub log_format: LogFormat,
    /// Largest accepted request body in bytes (`MAX_BODY_BYTES`, default
    /// 64 KiB); larger bodies get 413.
    pub max_body_bytes: usize,
    /// Value of `Access-Control-Allow-Origin` (`CORS_ALLOW_ORIGIN`, default `*`).
    pub cors_allow_origin: String,
    /// Where business and cache metrics go (`METRICS`: `emf`, the default
    /// in Lambda, or `off`, the default elsewhere), under the CloudWatch
    /// namespace `METRICS_NAMESPACE` (default `ShopApi`).
    pub metrics: MetricsSink,
    /// The longest a request may take (`REQUEST_TIMEOUT_MS`, default 3000):
    /// past it the answer is a 503. In Lambda the invocation's own deadline
    /// minus a safety margin caps it further.
    pub request_timeout: Duration,
    /// The longest one cache call may take (`CACHE_TIMEOUT_MS`, default
    /// 200); the cache is an optimisation, never worth a slow answer.
    pub cache_timeout: Duration,
    /// When the store's and the cache's circuit breakers open
    /// (`BREAKER_FAILURES`, default 5 consecutive failures) and how long
    /// they stay open (`BREAKER_COOLDOWN_MS`, default 5000, plus jitter).
    pub breaker: BreakerSettings,
    /// `product.stock_low` when a product's stock goes from at least this
    /// to below it (`LOW_STOCK_THRESHOLD`, default 5).
    pub low_stock_threshold: u64,
    /// How long a pending order holds its stock before the reservation
    /// expiry moves it to `expired` (`ORDER_RESERVATION_SECONDS`, default
    /// 1800; `0` turns expiry off).
    pub order_reservation: Option<Duration>,
    /// How long a cart nobody touches is kept (`CART_TTL_DAYS`, default
    /// 30, at least 1): DynamoDB's TTL deletes it, the embedded store's
    /// sweep does locally.
    pub cart_ttl: time::Duration,
    /// How often `shop-local` reads the DynamoDB Local table's stream
    /// (`EVENTS_POLL_MS`, default 200); the embedded outbox is read as soon
    /// as a change is written, and at this interval otherwise.
    pub events_poll_interval: Duration,
    /// Whether `shop-local` reads the change feed and runs the consumers
    /// (`EVENT_FEED`: `on`, the default, or `off`). Off, changes wait in the
    /// feed (the outbox, the table's stream) for a process that reads it:
    /// one reader per DynamoDB table is enough.
    pub event_feed: bool,
    /// The delays between a webhook delivery's attempts
    /// (`WEBHOOK_RETRY_SCHEDULE_SECONDS`, comma-separated; default
    /// `5,60,600,3600,21600,43200`).
    pub webhook_retry_schedule: crate::webhooks::RetrySchedule,
    /// `WEBHOOK_ALLOW_INSECURE_URLS=true` lets subscriptions use `http://`
    /// and loopback addresses: for local development and tests only, never
    /// in a deployment (off by default).
    pub webhook_allow_insecure_urls: bool,
    /// `WEBHOOK_ALLOWED_NETWORK`: one range (CIDR, or an address alone) of
    /// the operator's own network that subscriptions may call although it
    /// is not public. Unset by default.
    pub webhook_allowed_network: Option<crate::webhooks::Network>,
    /// `DYNAMODB_CONSUMED_CAPACITY=on` asks DynamoDB for the capacity each
    /// call consumed and records it per request (the `ReadCapacityUnits` /
    /// `WriteCapacityUnits` metrics): what `load/lambda-cost.sh` prices.
    /// Off by default.
    pub dynamodb_consumed_capacity: bool,
    /// `DYNAMODB_PARTITION_REPORT=<file>`: every successful DynamoDB write
    /// is charged to the partitions it lands in (table and index keys), and
    /// the heat summary is written to the file about once a second (what
    /// `load/partition-heat.sh` reads). Unset by default.
    pub dynamodb_partition_report: Option<std::path::PathBuf>,
    /// Who takes payments (`PAYMENT_PROVIDER`: `none`, the default, or
    /// `stripe`).
    pub payment_provider: PaymentProvider,
    pub stripe: StripeSettings,
    /// The currency of every price and payment (`SHOP_CURRENCY`, default
    /// `usd`).
    pub currency: crate::domain::Currency,
    /// True when running inside AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME` set),
    /// where nothing may be generated or created on the fly.
    pub in_lambda: bool,
}

/// A variable that is set but unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl Config {
    /// What the change-to-event mapping needs of the configuration.
    pub fn event_mapping(&self) -> crate::events::Mapping {
        crate::events::Mapping { low_stock_threshold: self.low_stock_threshold }
    }

    /// The SSRF rules webhook URLs are held to.
    pub fn webhook_target_policy(&self) -> crate::webhooks::TargetPolicy {
        crate::webhooks::TargetPolicy {
            allow_insecure: self.webhook_allow_insecure_urls,
            allowed_network: self.webhook_allowed_network,
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let store = match var("STORE").as_deref() {
            None | Some("embedded") => StoreKind::Embedded,
            Some("dynamodb") => StoreKind::DynamoDb,
            Some(other) => return Err(invalid("STORE", format!("`{other}` is not `embedded` or `dynamodb`"))),
        };
        let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let log_format = match var("LOG_FORMAT").as_deref() {
            None => LogFormat::default_for(in_lambda, std::io::stdout().is_terminal()),
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => return Err(invalid("LOG_FORMAT", format!("`{other}` is not `json` or `pretty`"))),
        };
        let log_level = var("LOG_LEVEL").unwrap_or_else(|| "info".into());
        if !is_log_filter(&log_level) {
            return Err(invalid("LOG_LEVEL", format!("`{log_level}` is not a level or `target=level` list")));
        }
        let namespace = var("METRICS_NAMESPACE").unwrap_or_else(|| "ShopApi".into());
        let metrics = match var("METRICS").as_deref() {
            Some("emf") => MetricsSink::Emf { namespace },
            None if in_lambda => MetricsSink::Emf { namespace },
            None | Some("off") => MetricsSink::Off,
            Some(other) => return Err(invalid("METRICS", format!("`{other}` is not `emf` or `off`"))),
        };
        let table_name = var("TABLE_NAME").unwrap_or_else(|| "shop".into());
        if !is_table_name(&table_name) {
            return Err(invalid("TABLE_NAME", format!("`{table_name}` is not 3-255 of a-z, A-Z, 0-9, `_`, `-`, `.`")));
        }
        let jwt_secret = var("JWT_SECRET");
        if let Some(secret) = &jwt_secret
            && secret.len() < 32
        {
            return Err(invalid("JWT_SECRET", "must be at least 32 characters".into()));
        }
        let rate_limit = RateLimitConfig {
            window: Duration::from_secs(number(&var, "RATE_LIMIT_WINDOW_SECONDS", 900, 1)?),
            general_max: number(&var, "RATE_LIMIT_MAX", 5000, 1)?,
            auth_max: number(&var, "AUTH_RATE_LIMIT_MAX", 500, 1)?,
        };
        let payment_provider = match var("PAYMENT_PROVIDER").as_deref() {
            None | Some("none") => PaymentProvider::None,
            Some("stripe") => PaymentProvider::Stripe,
            Some(other) => return Err(invalid("PAYMENT_PROVIDER", format!("`{other}` is not `none` or `stripe`"))),
        };
        let stripe = StripeSettings {
            secret_key: var("STRIPE_SECRET_KEY"),
            webhook_secret: var("STRIPE_WEBHOOK_SECRET"),
            secrets_arn: var("STRIPE_SECRETS_ARN"),
            api_base: var("STRIPE_API_BASE").unwrap_or_else(|| STRIPE_API.into()),
        };
        if payment_provider == PaymentProvider::Stripe && stripe.secrets_arn.is_none() {
            if stripe.secret_key.is_none() {
                return Err(invalid("STRIPE_SECRET_KEY", "required with PAYMENT_PROVIDER=stripe".into()));
            }
            if stripe.webhook_secret.is_none() {
                return Err(invalid("STRIPE_WEBHOOK_SECRET", "required with PAYMENT_PROVIDER=stripe".into()));
            }
        }
        if stripe.webhook_secret.as_deref().is_some_and(|secret| !secret.starts_with("whsec_")) {
            return Err(invalid("STRIPE_WEBHOOK_SECRET", "must start with `whsec_`".into()));
        }
        if !(stripe.api_base.starts_with("https://") || stripe.api_base.starts_with("http://")) {
            return Err(invalid("STRIPE_API_BASE", "must be an http(s) URL".into()));
        }
        let currency = crate::domain::Currency::parse(var("SHOP_CURRENCY").as_deref().unwrap_or("usd"))
            .map_err(|reason| invalid("SHOP_CURRENCY", reason))?;
        Ok(Config {
            port: u16::try_from(number(&var, "PORT", 3000, 0)?)
                .map_err(|_| invalid("PORT", "must be at most 65535".into()))?,
            store,
            data_dir: var("DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".data")),
            table_name,
            dynamodb_endpoint: var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")),
            cache_url: var("CACHE_URL"),
            cache_key_prefix: var("CACHE_KEY_PREFIX").unwrap_or_else(|| "shop".into()),
            jwt_secret,
            jwt_ttl: Duration::from_secs(number(&var, "JWT_TTL_SECONDS", 86_400, 1)?),
            rate_limit,
            admin_emails: var("ADMIN_EMAILS")
                .filter(|_| !in_lambda)
                .map(|list| list.split(',').map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty()).collect())
                .unwrap_or_default(),
            login_failures_max: number(&var, "LOGIN_FAILURES_MAX", 10, 1)?,
            login_failures_window: Duration::from_secs(number(&var, "LOGIN_FAILURES_WINDOW_SECONDS", 900, 1)?),
            log_level,
            log_format,
            max_body_bytes: usize::try_from(number(&var, "MAX_BODY_BYTES", 64 * 1024, 1)?)
                .map_err(|_| invalid("MAX_BODY_BYTES", "too large".into()))?,
            cors_allow_origin: var("CORS_ALLOW_ORIGIN").unwrap_or_else(|| "*".into()),
            metrics,
            request_timeout: Duration::from_millis(number(&var, "REQUEST_TIMEOUT_MS", 3000, 100)?),
            cache_timeout: Duration::from_millis(number(&var, "CACHE_TIMEOUT_MS", 200, 1)?),
            breaker: BreakerSettings {
                failure_threshold: u32::try_from(number(&var, "BREAKER_FAILURES", 5, 1)?)
                    .map_err(|_| invalid("BREAKER_FAILURES", "too large".into()))?,
                cooldown: Duration::from_millis(number(&var, "BREAKER_COOLDOWN_MS", 5000, 1)?),
            },
            low_stock_threshold: number(&var, "LOW_STOCK_THRESHOLD", 5, 0)?,
            order_reservation: Some(number(&var, "ORDER_RESERVATION_SECONDS", 1800, 0)?)
                .filter(|&seconds| seconds > 0)
                .map(Duration::from_secs),
            cart_ttl: match number(&var, "CART_TTL_DAYS", 30, 1)? {
                days @ 1..=3650 => time::Duration::days(days as i64),
                _ => return Err(invalid("CART_TTL_DAYS", "must be at most 3650".into())),
            },
            events_poll_interval: Duration::from_millis(number(&var, "EVENTS_POLL_MS", 200, 10)?),
            event_feed: match var("EVENT_FEED").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => return Err(invalid("EVENT_FEED", format!("`{other}` is not `on` or `off`"))),
            },
            webhook_retry_schedule: crate::webhooks::RetrySchedule::parse(
                var("WEBHOOK_RETRY_SCHEDULE_SECONDS").as_deref().unwrap_or(crate::webhooks::RetrySchedule::DEFAULT),
            )
            .map_err(|reason| invalid("WEBHOOK_RETRY_SCHEDULE_SECONDS", reason))?,
            webhook_allow_insecure_urls: match var("WEBHOOK_ALLOW_INSECURE_URLS").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(invalid("WEBHOOK_ALLOW_INSECURE_URLS", format!("`{other}` is not `true` or `false`")));
                }
            },
            webhook_allowed_network: var("WEBHOOK_ALLOWED_NETWORK")
                .map(|network| crate::webhooks::Network::parse(&network))
                .transpose()
                .map_err(|reason| invalid("WEBHOOK_ALLOWED_NETWORK", reason))?,
            dynamodb_consumed_capacity: match var("DYNAMODB_CONSUMED_CAPACITY").as_deref() {
                None | Some("off") => false,
                Some("on") => true,
                Some(other) => {
                    return Err(invalid("DYNAMODB_CONSUMED_CAPACITY", format!("`{other}` is not `on` or `off`")));
                }
            },
            dynamodb_partition_report: var("DYNAMODB_PARTITION_REPORT").map(std::path::PathBuf::from),
            payment_provider,
            stripe,
            currency,
            in_lambda,
        })
    }
}

/// DynamoDB's rule for table names: refused at start, not by every request.
fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `info`, or comma-separated `level` / `target=level` items.
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    filter.split(',').all(|item| {
        let level =
            item.rsplit_once('=').map_or(item, |(target, level)| if target.trim().is_empty() { "" } else { level });
        LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
    })
}

fn invalid(name: &'static str, reason: String) -> ConfigError {
    ConfigError { name, reason }
}

/// An unsigned integer variable with a default and a lower bound.
fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = var(name) else { return Ok(default) };
    let value: u64 = raw.parse().map_err(|_| invalid(name, format!("`{raw}` is not a non-negative integer")))?;
    if value < min {
        return Err(invalid(name, format!("must be at least {min}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_laptop_defaults() {
        let config = config_from(&[]).unwrap();
        assert_eq!(config.port, 3000);
        assert_eq!(config.store, StoreKind::Embedded);
        assert_eq!(config.rate_limit.general_max, 5000);
        assert_eq!(config.rate_limit.auth_max, 500);
        assert_eq!(config.rate_limit.window, Duration::from_secs(900));
        assert_eq!(config.jwt_ttl, Duration::from_secs(86_400));
        assert!(config.cache_url.is_none());
        assert!(!config.in_lambda);
        assert_eq!(config.metrics, MetricsSink::Off);
    }

    #[test]
    fn a_table_name_dynamodb_would_refuse_stops_the_start() {
        for bad in ["fz", "shop table", "shop/prod", &"t".repeat(256)] {
            assert_eq!(config_from(&[("TABLE_NAME", bad)]).unwrap_err().name, "TABLE_NAME", "{bad}");
        }
        assert_eq!(config_from(&[("TABLE_NAME", "shop-api_prod.v2")]).unwrap().table_name, "shop-api_prod.v2");
    }

    #[test]
    fn metrics_default_to_emf_in_lambda_and_can_be_set_either_way() {
        let in_lambda = config_from(&[("AWS_LAMBDA_FUNCTION_NAME", "health")]).unwrap();
        assert_eq!(in_lambda.metrics, MetricsSink::Emf { namespace: "ShopApi".into() });
        let named = config_from(&[("METRICS", "emf"), ("METRICS_NAMESPACE", "ShopApi/dev")]).unwrap();
        assert_eq!(named.metrics, MetricsSink::Emf { namespace: "ShopApi/dev".into() });
        let silenced = config_from(&[("AWS_LAMBDA_FUNCTION_NAME", "health"), ("METRICS", "off")]).unwrap();
        assert_eq!(silenced.metrics, MetricsSink::Off);
        assert_eq!(config_from(&[("METRICS", "statsd")]).unwrap_err().name, "METRICS");
    }

    #[test]
    fn a_bad_number_names_its_variable() {
        let err = config_from(&[("RATE_LIMIT_MAX", "lots")]).unwrap_err();
        assert_eq!(err.name, "RATE_LIMIT_MAX");
        let err = config_from(&[("PORT", "70000")]).unwrap_err();
        assert_eq!(err.name, "PORT");
        let err = config_from(&[("JWT_TTL_SECONDS", "0")]).unwrap_err();
        assert_eq!(err.name, "JWT_TTL_SECONDS");
    }

    #[test]
    fn carts_last_thirty_days_unless_set_within_ten_years() {
        assert_eq!(config_from(&[]).unwrap().cart_ttl, time::Duration::days(30));
        assert_eq!(config_from(&[("CART_TTL_DAYS", "7")]).unwrap().cart_ttl, time::Duration::days(7));
        for bad in ["0", "3651", "a week"] {
            assert_eq!(config_from(&[("CART_TTL_DAYS", bad)]).unwrap_err().name, "CART_TTL_DAYS", "{bad}");
        }
    }

    #[test]
    fn log_levels_are_checked() {
        assert!(config_from(&[("LOG_LEVEL", "shop=debug,warn")]).is_ok());
        assert_eq!(config_from(&[("LOG_LEVEL", "loud")]).unwrap_err().name, "LOG_LEVEL");
    }

    #[test]
    fn an_unknown_store_is_refused() {
        assert_eq!(config_from(&[("STORE", "postgres")]).unwrap_err().name, "STORE");
    }

    #[test]
    fn a_short_jwt_secret_is_refused_without_echoing_it() {
        let err = config_from(&[("JWT_SECRET", "hunter2")]).unwrap_err();
        assert_eq!(err.name, "JWT_SECRET");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn admin_emails_are_trimmed_and_lower_cased() {
        let config = config_from(&[("ADMIN_EMAILS", " Boss@Shop.test, ,ops@shop.test ")]).unwrap();
        assert_eq!(config.admin_emails, vec!["boss@shop.test", "ops@shop.test"]);
    }

    #[test]
    fn logs_are_readable_at_a_terminal_and_json_elsewhere_and_in_lambda() {
        assert_eq!(LogFormat::default_for(false, true), LogFormat::Pretty);
        assert_eq!(LogFormat::default_for(false, false), LogFormat::Json);
        assert_eq!(LogFormat::default_for(true, true), LogFormat::Json);
        let forced = config_from(&[("LOG_FORMAT", "json")]).unwrap();
        assert_eq!(forced.log_format, LogFormat::Json);
    }

    #[test]
    fn admin_emails_are_ignored_in_lambda() {
        let config = config_from(&[("ADMIN_EMAILS", "boss@shop.test"), ("AWS_LAMBDA_FUNCTION_NAME", "auth-register")]);
        assert!(config.unwrap().admin_emails.is_empty());
    }

    #[test]
    fn webhook_settings_default_to_the_day_long_schedule_and_https_only() {
        let config = config_from(&[]).unwrap();
        assert_eq!(config.webhook_retry_schedule.attempts(), 7);
        assert!(!config.webhook_allow_insecure_urls);
        let fast =
            config_from(&[("WEBHOOK_RETRY_SCHEDULE_SECONDS", "1,2"), ("WEBHOOK_ALLOW_INSECURE_URLS", "true")]).unwrap();
        assert_eq!(fast.webhook_retry_schedule.attempts(), 3);
        assert!(fast.webhook_target_policy().allow_insecure);
        assert_eq!(
            config_from(&[("WEBHOOK_RETRY_SCHEDULE_SECONDS", "5,x")]).unwrap_err().name,
            "WEBHOOK_RETRY_SCHEDULE_SECONDS"
        );
        assert_eq!(
            config_from(&[("WEBHOOK_ALLOW_INSECURE_URLS", "yes")]).unwrap_err().name,
            "WEBHOOK_ALLOW_INSECURE_URLS"
        );
        assert_eq!(
            config_from(&[("WEBHOOK_ALLOWED_NETWORK", "172.17.0.1/40")]).unwrap_err().name,
            "WEBHOOK_ALLOWED_NETWORK"
        );
        let bridge = config_from(&[("WEBHOOK_ALLOWED_NETWORK", "172.17.0.1")]).unwrap();
        assert!(bridge.webhook_target_policy().check_address("172.17.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn consumed_capacity_is_recorded_only_when_asked_for() {
        assert!(!config_from(&[]).unwrap().dynamodb_consumed_capacity);
        assert!(config_from(&[("DYNAMODB_CONSUMED_CAPACITY", "on")]).unwrap().dynamodb_consumed_capacity);
        assert_eq!(config_from(&[("DYNAMODB_CONSUMED_CAPACITY", "1")]).unwrap_err().name, "DYNAMODB_CONSUMED_CAPACITY");
    }

    #[test]
    fn an_empty_cache_url_means_the_in_process_cache() {
        assert!(config_from(&[("CACHE_URL", "")]).unwrap().cache_url.is_none());
    }
}

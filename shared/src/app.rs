//! The application context, built once per cold start, and the pipeline
//! every request goes through: deadline, rate limit, access check (the
//! route's [`Access`]), handler, error mapping, headers, one log line.
//!
//! The store and the cache the handlers see are already guarded (see
//! [`crate::resilience`]): every call bounded by the request's deadline,
//! every dependency behind its circuit breaker.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use crate::access::{Access, Principal};
use crate::auth::{HashMemory, PasswordHasher, SecretError, TokenError, TokenService, resolve_jwt_secret};
use crate::cache::generational::GenerationalCache;
use crate::cache::{self, Cache, CacheError};
use crate::config::{Config, PaymentProvider};
use crate::domain::UserStatus;
use crate::error::ApiError;
use crate::handlers;
use crate::http::{CursorCodec, RequestMeta, apply_standard_headers, bearer_token, compression};
use crate::metrics::{self, Metric, RequestObserver};
use crate::payments::Payments;
use crate::rate_limit::{LoginThrottle, RateDecision, RateLimiter};
use crate::resilience::{CircuitBreaker, GuardedCache, GuardedStore, KeyQueues, StoreGate, deadline};
use crate::routes::Route;
use crate::store::{self, Store, StoreError};

/// Why the process cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up the cache: {0}")]
    Cache(#[from] CacheError),
    #[error("cannot read the Stripe keys: {0}")]
    PaymentSecrets(String),
}

/// Stripe's client when the configuration asks for it and has its keys
/// (resolved by [`App::from_config`]); `None` otherwise, and the payment
/// routes answer 503 if the provider is `stripe` all the same.
fn payments_of(config: &Config, breaker: &Arc<CircuitBreaker>) -> Option<Payments> {
    if config.payment_provider != PaymentProvider::Stripe {
        return None;
    }
    let (Some(key), Some(webhook)) = (&config.stripe.secret_key, &config.stripe.webhook_secret) else {
        tracing::error!("PAYMENT_PROVIDER=stripe without its keys: payments are unavailable");
        return None;
    };
    Payments::new(&config.stripe.api_base, key, webhook, config.currency.clone(), Arc::clone(breaker))
        .inspect_err(|err| tracing::error!(error = %err, "cannot build the Stripe client"))
        .ok()
}

/// Everything a handler needs; shared by all requests of one process.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub tokens: TokenService,
    pub passwords: PasswordHasher,
    /// Signs paging cursors with a key derived from the JWT secret, so every
    /// instance accepts every other instance's cursors.
    pub cursors: CursorCodec,
    /// The catalog's read-through cache over `cache`.
    pub catalog_cache: GenerationalCache,
    /// The same cache scopes, written without the cache's breaker: the
    /// change feed's invalidations (see [`GuardedCache::timed`]).
    pub invalidations: GenerationalCache,
    /// The circuit breakers guarding `store` and `cache` (for `/health`).
    pub breakers: Breakers,
    /// Failed logins per account.
    pub login_throttle: LoginThrottle,
    /// Stripe, with `PAYMENT_PROVIDER=stripe` and its keys.
    pub payments: Option<Payments>,
    /// Orders of one product, a few at a time (see [`KeyQueues`]).
    pub order_queues: KeyQueues,
    /// Sees each request's outcome (`shop-local`'s `/metrics`).
    observer: Option<Arc<dyn RequestObserver>>,
    rate_limiter: RateLimiter,
}

/// This process's circuit breakers, one per dependency.
pub struct Breakers {
    pub store: Arc<CircuitBreaker>,
    pub cache: Arc<CircuitBreaker>,
    /// Stripe's (closed and unused when payments are off).
    pub payments: Arc<CircuitBreaker>,
}

/// What Lambda's own deadline keeps back, so that a request past ours is
/// still answered (503 with our JSON body) before Lambda stops the
/// invocation and API Gateway sends its own bodiless 503.
const LAMBDA_DEADLINE_MARGIN: Duration = Duration::from_millis(300);

impl App {
    /// Builds the adapters the configuration names.
    pub async fn from_config(mut config: Config) -> Result<Self, StartupError> {
        let secret = resolve_jwt_secret(&config)?;
        crate::payments::secrets::resolve(&mut config).await?;
        let store = store::connect(&config).await?;
        let cache = cache::connect(&config)?;
        Ok(App::new(config, store, cache, &secret))
    }

    /// Builds the context around given adapters (tests pass their own),
    /// guarding each with its breaker and the request deadline.
    pub fn new(config: Config, store: Arc<dyn Store>, cache: Arc<dyn Cache>, jwt_secret: &[u8]) -> Self {
        let breakers = Breakers {
            store: CircuitBreaker::new("store", config.breaker, config.metrics.clone()),
            cache: CircuitBreaker::new("cache", config.breaker, config.metrics.clone()),
            payments: CircuitBreaker::new("stripe", config.breaker, config.metrics.clone()),
        };
        let payments = payments_of(&config, &breakers.payments);
        let store: Arc<dyn Store> = Arc::new(GuardedStore::new(store, Arc::clone(&breakers.store)));
        let invalidations =
            GenerationalCache::new(Arc::new(GuardedCache::timed(Arc::clone(&cache), config.cache_timeout)));
        let cache: Arc<dyn Cache> =
            Arc::new(GuardedCache::new(cache, Arc::clone(&breakers.cache), config.cache_timeout));
        App {
            tokens: TokenService::new(jwt_secret, config.jwt_ttl),
            // One invocation at a time per Lambda instance: give argon2's
            // memory back between invocations; a server keeps it.
            passwords: if config.in_lambda {
                PasswordHasher::with_memory(HashMemory::Release)
            } else {
                PasswordHasher::new()
            },
            cursors: CursorCodec::new(jwt_secret),
            catalog_cache: GenerationalCache::new(Arc::clone(&cache)),
            invalidations,
            rate_limiter: RateLimiter::new(Arc::clone(&cache), config.rate_limit),
            login_throttle: LoginThrottle::new(
                Arc::clone(&cache),
                config.login_failures_max,
                config.login_failures_window,
            ),
            breakers,
            payments,
            order_queues: KeyQueues::default(),
            observer: None,
            config,
            store,
            cache,
        }
    }

    /// Has `observer` see every request from now on.
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Serves one request of `route`. Never fails: every error becomes its
    /// JSON response here.
    pub async fn handle(&self, route: &'static Route, request: Request) -> Response<Body> {
        let meta = RequestMeta::of(&request);
        let span = tracing::info_span!("request", request_id = %meta.request_id, function = route.function);
        async move {
            let started = Instant::now();
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let deadline = tokio::time::Instant::now() + self.time_allowed(&request);
            let accept_encoding = request.headers().get(http::header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
            let coding = compression::negotiate(accept_encoding);
            let ((mut response, rate), recorded) =
                metrics::record(deadline::within(deadline, self.answer_by(deadline, route, &meta, request))).await;
            self.config.metrics.publish(&recorded, route.function, &meta.request_id);
            if let Some(rate) = rate {
                set_rate_headers(&mut response, &rate);
            }
            compression::compress(&mut response, coding);
            apply_standard_headers(&mut response, &meta.request_id, &self.config.cors_allow_origin);
            let latency = started.elapsed();
            if let Some(observer) = &self.observer {
                observer.observe(route.function, method.as_str(), response.status().as_u16(), latency, &recorded);
            }
            tracing::info!(
                method = %method,
                path = %path,
                status = response.status().as_u16(),
                latency_ms = latency.as_secs_f64() * 1000.0,
                store_ms = recorded.1.store.as_secs_f64() * 1000.0,
                cache_ms = recorded.1.cache.as_secs_f64() * 1000.0,
                "request completed"
            );
            response
        }
        .instrument(span)
        .await
    }

    /// The handler's answer, or a 503 once `deadline` passes.
    async fn answer_by(
        &self,
        deadline: tokio::time::Instant,
        route: &'static Route,
        meta: &RequestMeta,
        request: Request,
    ) -> (Response<Body>, Option<RateDecision>) {
        let answered = tokio::time::timeout_at(deadline, self.limit_then_dispatch(route, meta, request))
            .await
            .unwrap_or_else(|_| (ApiError::unavailable("the request's deadline passed").to_response(), None));
        if answered.0.status() == http::StatusCode::SERVICE_UNAVAILABLE {
            metrics::count(Metric::DependencyFailures);
        }
        answered
    }

    /// How long this request may take: `REQUEST_TIMEOUT_MS`, and in Lambda
    /// never past the invocation's deadline less [`LAMBDA_DEADLINE_MARGIN`].
    fn time_allowed(&self, request: &Request) -> Duration {
        let configured = self.config.request_timeout;
        let Some(context) = request.lambda_context_ref() else { return configured };
        let left = context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
        configured.min(left.saturating_sub(LAMBDA_DEADLINE_MARGIN))
    }

    async fn limit_then_dispatch(
        &self,
        route: &'static Route,
        meta: &RequestMeta,
        request: Request,
    ) -> (Response<Body>, Option<RateDecision>) {
        let Some(class) = route.rate_class() else {
            return (self.authorize_then_dispatch(route, request).await.unwrap_or_else(|err| err.to_response()), None);
        };
        let check = self.rate_limiter.check(class, &meta.source_ip, unix_now());
        let (decision, answered) = if route.method == "GET" {
            // A read starts beside its rate-limit check (its cache lookup
            // and the counter share one round trip); the store waits for
            // the decision, so a refused client never reaches it.
            let gate = StoreGate::new();
            let decide = async {
                let decision = check.await;
                gate.decide(decision.allowed);
                decision
            };
            // Boxed: beside the check, the whole handler's state would
            // otherwise sit in this future (and overflow a debug build's
            // test-thread stack).
            let read = gate.guard(Box::pin(self.authorize_then_dispatch(route, request)));
            let (decision, answered) = tokio::join!(decide, read);
            (decision, Some(answered))
        } else {
            let decision = check.await;
            let answered = match decision.allowed {
                true => Some(self.authorize_then_dispatch(route, request).await),
                false => None,
            };
            (decision, answered)
        };
        match answered {
            // Only an answer that stands becomes a response (and a log
            // line): a refused read's store calls failed at the gate.
            Some(answered) if decision.allowed => (answered.unwrap_or_else(|err| err.to_response()), Some(decision)),
            _ => {
                metrics::count(Metric::RateLimited);
                let refused = ApiError::TooManyRequests { retry_after: decision.retry_after };
                (refused.to_response(), Some(decision))
            }
        }
    }

    async fn authorize_then_dispatch(
        &self,
        route: &'static Route,
        request: Request,
    ) -> Result<Response<Body>, ApiError> {
        let caller = self.authorize(route.access, &request).await?;
        handlers::dispatch(self, route.id, caller, request).await
    }

    /// Applies the route's access at the door: the caller the handler gets
    /// (`None` on a public route, whose handler never sees a token), or 401
    /// / 403.
    async fn authorize(&self, access: Access, request: &Request) -> Result<Option<Principal>, ApiError> {
        if !access.needs_token() {
            return Ok(None);
        }
        let principal = self.authenticate(request).await?;
        if !access.admits(principal.role) {
            return Err(ApiError::Forbidden("admin role required".into()));
        }
        Ok(Some(principal))
    }

    /// The caller of a protected route: 401 for a missing, malformed, badly
    /// signed, expired or revoked token.
    async fn authenticate(&self, request: &Request) -> Result<Principal, ApiError> {
        let token = bearer_token(request).ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let claims = self.tokens.verify(token).map_err(|err| {
            ApiError::Unauthorized(match err {
                TokenError::Expired => "token has expired".into(),
                TokenError::Invalid => "invalid token".into(),
            })
        })?;
        let user_id = claims.user_id().ok_or_else(|| ApiError::Unauthorized("invalid token".into()))?;
        let standing = self.store.token_standing(user_id, &claims.jti).await?;
        if standing.revoked {
            return Err(ApiError::Unauthorized("token has been revoked".into()));
        }
        let Some(user) = standing.user else {
            return Err(ApiError::Unauthorized("user no longer exists".into()));
        };
        if user.status == UserStatus::Disabled {
            return Err(ApiError::Unauthorized("account is disabled".into()));
        }
        if user.session_version != claims.ver {
            return Err(ApiError::Unauthorized("token was signed out by a password change or a disabling".into()));
        }
        // The role as stored now, not as the token was issued: a promotion
        // or a demotion takes effect on the next request.
        Ok(Principal { user_id, role: user.role, claims })
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn set_rate_headers(response: &mut Response<Body>, rate: &RateDecision) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", rate.limit),
        ("x-ratelimit-remaining", rate.remaining),
        ("x-ratelimit-reset", rate.reset_at),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

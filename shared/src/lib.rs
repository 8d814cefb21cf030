//! The shop API's domain crate: everything a Lambda function or the local
//! gateway needs to serve a route.
//!
//! Each route of the API is one small binary in `functions/`; every one of
//! them links this crate, builds an [`App`] once per cold start and hands it
//! each request. The local gateway (`local-stack/`) serves all routes of
//! [`routes::ROUTES`] in one process through the same [`App::handle`].
//!
//! How the pieces fit, as one picture (the route and worker tables, ports
//! and adapters, the change feed, a request's path): `docs/architecture.md`
//! in the repository; the manual's other pages are beside it.
//!
//! # Layout
//!
//! - [`config`]: typed configuration read from the environment, failing fast.
//! - [`domain`]: validated types and rules (users, roles, emails); no I/O.
//! - [`auth`]: password hashing (argon2id) and tokens (HS256 JWT).
//! - [`store`]: the store port and its adapters, DynamoDB and embedded (redb).
//! - [`cache`]: the cache port and its adapters, Redis and in-process.
//! - [`rate_limit`]: fixed-window limits per client IP, counted in the cache.
//! - [`resilience`]: request deadlines and circuit breakers around the store
//!   and the cache.
//! - [`http`]: request parsing, JSON responses, security headers, the error body.
//! - [`handlers`]: one async function per route.
//! - [`routes`]: the route table, the single source of truth for what exists
//!   and who may call it ([`access`]).
//! - [`app`]: the shared context and the pipeline every request goes through.
//! - [`lambda`]: the entry point each function's `main` calls.
//! - [`telemetry`]: JSON logs carrying the request id.
//! - [`metrics`]: business and cache metrics as CloudWatch EMF lines.
//! - [`payments`]: Stripe PaymentIntents, the signed webhook, refunds.
//! - [`events`]: domain events from the store's change feed, their
//!   consumers, and the reservation expiry.
//! - [`workers`]: the functions that are not routes (the asynchronous
//!   half in AWS), as [`routes`] lists the API's.

pub mod access;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod handlers;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod payments;
pub mod rate_limit;
pub mod resilience;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod webhooks;
pub mod workers;

pub use app::App;
pub use config::Config;
pub use error::ApiError;

//! Deadlines and circuit breakers: what keeps every request answering in
//! time while DynamoDB or the cache is down.
//!
//! - [`deadline`]: each request's deadline, and calls bounded by what is
//!   left of it.
//! - [`breaker`]: a circuit breaker per dependency and process.
//! - [`guarded`]: the store and cache ports wrapped in both, which is all
//!   the handlers ever see.

pub mod breaker;
pub mod deadline;
pub mod guarded;

pub use breaker::{BreakerSettings, BreakerState, CircuitBreaker};
pub use guarded::{GuardedCache, GuardedStore};

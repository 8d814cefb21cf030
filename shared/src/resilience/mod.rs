//! Deadlines and circuit breakers: what keeps every request answering in
//! time while DynamoDB or the cache is down.
//!
//! - [`deadline`]: each request's deadline, and calls bounded by what is
//!   left of it.
//! - [`breaker`]: a circuit breaker per dependency and process.
//! - [`guarded`]: the store and cache ports wrapped in both, which is all
//!   the handlers ever see.
//! - [`StoreGate`]: a read's store calls held until its rate-limit
//!   decision, which runs beside the read's first cache lookup.
//! - [`key_queue`]: orders of one product queued in the process, so that a
//!   hot product stays a problem of that product, not of the store.

pub mod breaker;
pub mod deadline;
mod gate;
pub mod guarded;
pub mod key_queue;

pub use breaker::{BreakerSettings, BreakerState, CircuitBreaker};
pub use gate::StoreGate;
pub use guarded::{GuardedCache, GuardedStore, StoreFailures, store_failures};
pub use key_queue::KeyQueues;

//! A circuit breaker per dependency, shared by every request of a process.
//!
//! Invariant: **while a dependency is known to be down, no request waits
//! for it.** After `failure_threshold` consecutive failures (errors that
//! say the dependency is unreachable, or calls that ran out of time) the
//! breaker opens: calls are refused at once for a cool-down (with jitter,
//! so a fleet of Lambda instances does not probe in step). Then one call
//! at a time is let through as a probe (half-open): its success closes the
//! breaker, its failure opens it again. A probe that is dropped before it
//! finishes (its request was cancelled) counts as a failure, so the breaker
//! can never stay half-open with no probe running.
//!
//! Each transition is one log line; opening also writes a `BreakerOpened`
//! EMF metric for the dependency (see [`crate::metrics`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::MetricsSink;

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker (`BREAKER_FAILURES`).
    pub failure_threshold: u32,
    /// How long it stays open before a probe (`BREAKER_COOLDOWN_MS`); each
    /// opening draws a jitter of up to a fifth of it on top.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings { failure_threshold: 5, cooldown: Duration::from_secs(5) }
    }
}

/// What `/health` shows of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker refused the call: the dependency is down; try again after
/// `retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerOpen {
    pub retry_after: Duration,
}

/// One dependency's breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    dependency: &'static str,
    settings: BreakerSettings,
    state: Mutex<State>,
    metrics: MetricsSink,
    /// Times it opened since the process started (`shop-local`'s /metrics).
    opened: AtomicU64,
}

impl CircuitBreaker {
    pub fn new(dependency: &'static str, settings: BreakerSettings, metrics: MetricsSink) -> Arc<Self> {
        let state = Mutex::new(State::Closed { failures: 0 });
        Arc::new(CircuitBreaker { dependency, settings, state, metrics, opened: AtomicU64::new(0) })
    }

    pub fn dependency(&self) -> &'static str {
        self.dependency
    }

    /// How many times it opened since the process started.
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            // Cooled down: the next call will be the probe.
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Lets a call through, or refuses it while the dependency is down. The
    /// permit must be told how the call went ([`Permit::succeeded`] /
    /// [`Permit::failed`]); dropped untold, it counts as neither, unless it
    /// was the probe, which then counts as a failure.
    pub fn admit(self: &Arc<Self>) -> Result<Permit, BreakerOpen> {
        let mut state = self.lock();
        let now = Instant::now();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(BreakerOpen { retry_after: until - now }),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => return Err(BreakerOpen { retry_after: self.settings.cooldown }),
        };
        Ok(Permit { breaker: Arc::clone(self), probe, settled: false })
    }

    fn succeed(&self, probe: bool) {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => *state = State::Closed { failures: 0 },
            State::HalfOpen { .. } if probe => {
                *state = State::Closed { failures: 0 };
                tracing::info!(
                    dependency = self.dependency,
                    breaker = "closed",
                    "circuit breaker closed: the probe succeeded"
                );
            }
            // A call admitted before the breaker opened proves little.
            State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }

    fn fail(&self, probe: bool) {
        let mut state = self.lock();
        match *state {
            State::Closed { failures } if failures + 1 >= self.settings.failure_threshold => {
                self.open(&mut state, "consecutive failures");
            }
            State::Closed { failures } => *state = State::Closed { failures: failures + 1 },
            State::HalfOpen { .. } if probe => self.open(&mut state, "the probe failed"),
            State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }

    fn open(&self, state: &mut State, why: &str) {
        let jitter_cap = u64::try_from(self.settings.cooldown.as_millis() / 5).unwrap_or(0);
        let jitter = Duration::from_millis(rand::random_range(0..=jitter_cap));
        *state = State::Open { until: Instant::now() + self.settings.cooldown + jitter };
        self.opened.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(dependency = self.dependency, breaker = "open", reason = why, "circuit breaker opened");
        self.metrics.publish_breaker_opened(self.dependency);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value, valid after any panic: keep serving.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A call the breaker let through.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    probe: bool,
    settled: bool,
}

impl Permit {
    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.succeed(self.probe);
    }

    pub fn failed(mut self) {
        self.settled = true;
        self.breaker.fail(self.probe);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker.fail(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Arc<CircuitBreaker> {
        let settings = BreakerSettings { failure_threshold: 3, cooldown: Duration::from_secs(5) };
        CircuitBreaker::new("store", settings, MetricsSink::Off)
    }

    fn fail_times(breaker: &Arc<CircuitBreaker>, times: u32) {
        for _ in 0..times {
            breaker.admit().unwrap().failed();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn it_opens_after_consecutive_failures_and_then_refuses_at_once() {
        let breaker = breaker();
        fail_times(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.times_opened(), 0);
        fail_times(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.times_opened(), 1);
        let refused = breaker.admit().unwrap_err();
        assert!(refused.retry_after >= Duration::from_secs(5) && refused.retry_after <= Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count_of_consecutive_failures() {
        let breaker = breaker();
        fail_times(&breaker, 2);
        breaker.admit().unwrap().succeeded();
        fail_times(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cooldown_one_probe_at_a_time_goes_through() {
        let breaker = breaker();
        fail_times(&breaker, 3);
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probe = breaker.admit().unwrap();
        assert!(breaker.admit().is_err(), "a second call waits for the probe");
        probe.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_again_for_a_full_cooldown() {
        let breaker = breaker();
        fail_times(&breaker, 3);
        tokio::time::advance(Duration::from_secs(7)).await;
        breaker.admit().unwrap().failed();
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(breaker.admit().is_err());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(breaker.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_unfinished_counts_as_a_failure() {
        let breaker = breaker();
        fail_times(&breaker, 3);
        tokio::time::advance(Duration::from_secs(7)).await;
        drop(breaker.admit().unwrap());
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn late_answers_of_calls_admitted_before_the_opening_change_nothing() {
        let breaker = breaker();
        let slow = breaker.admit().unwrap();
        fail_times(&breaker, 3);
        slow.succeeded();
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}

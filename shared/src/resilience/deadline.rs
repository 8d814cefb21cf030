//! Every request has a deadline; every store and cache call gets only what
//! is left of it.
//!
//! [`crate::App::handle`] runs each request inside [`within`]; the guarded
//! ports ([`super::GuardedStore`], [`super::GuardedCache`]) bound each call
//! with [`bounded`], dropping (and so cancelling) a call that would outlive
//! the request. A call made outside a request (a test, the warm-up) has no
//! deadline but its own cap.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The call did not finish before the request's deadline (or its cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline passed")]
pub struct DeadlinePassed;

/// Runs `request` with `deadline` as the deadline of every call it makes.
pub async fn within<F: Future>(deadline: Instant, request: F) -> F::Output {
    DEADLINE.scope(deadline, request).await
}

/// The current request's deadline, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// What is left of the current request's deadline (zero once it passed).
pub fn remaining() -> Option<Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

/// Runs `call` for at most what is left of the request's deadline, and at
/// most `cap` when given: a cache call, which should take a millisecond,
/// may not spend the whole budget of the request.
pub async fn bounded<F: Future>(cap: Option<Duration>, call: F) -> Result<F::Output, DeadlinePassed> {
    let capped = cap.map(|cap| Instant::now() + cap);
    let until = match (current(), capped) {
        (Some(deadline), Some(capped)) => Some(deadline.min(capped)),
        (deadline, capped) => deadline.or(capped),
    };
    match until {
        Some(until) => tokio::time::timeout_at(until, call).await.map_err(|_| DeadlinePassed),
        None => Ok(call.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_gets_only_what_is_left_of_the_request() {
        let started = Instant::now();
        let outcome = within(started + Duration::from_millis(300), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            bounded(None, tokio::time::sleep(Duration::from_secs(10))).await
        })
        .await;
        assert_eq!(outcome, Err(DeadlinePassed));
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cap_shorter_than_the_deadline_wins() {
        let started = Instant::now();
        let outcome = within(started + Duration::from_secs(3), async {
            bounded(Some(Duration::from_millis(50)), tokio::time::sleep(Duration::from_secs(1))).await
        })
        .await;
        assert_eq!(outcome, Err(DeadlinePassed));
        assert_eq!(started.elapsed(), Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_fits_returns_its_output() {
        let outcome = within(Instant::now() + Duration::from_secs(1), bounded(None, async { 7 })).await;
        assert_eq!(outcome, Ok(7));
        assert_eq!(remaining(), None, "no deadline outside a request");
        assert_eq!(bounded(None, async { 8 }).await, Ok(8), "outside a request only the cap applies");
    }
}

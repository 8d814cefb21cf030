//! Holds a request's store calls until its rate-limit decision, so that a
//! read can start beside the decision (its cache lookup and the rate
//! counter in flight together) without a refused client ever reaching the
//! store.

use std::future::Future;

use tokio::sync::watch;

tokio::task_local! {
    static DECISION: watch::Receiver<Option<bool>>;
}

/// One request's gate: closed until [`StoreGate::decide`].
pub struct StoreGate {
    decided: watch::Sender<Option<bool>>,
}

impl Default for StoreGate {
    fn default() -> Self {
        StoreGate::new()
    }
}

impl StoreGate {
    pub fn new() -> Self {
        StoreGate { decided: watch::channel(None).0 }
    }

    /// Opens the gate (`admitted`) or refuses every store call behind it.
    pub fn decide(&self, admitted: bool) {
        self.decided.send_replace(Some(admitted));
    }

    /// Runs `work` with its store calls behind this gate.
    pub async fn guard<F: Future>(&self, work: F) -> F::Output {
        DECISION.scope(self.decided.subscribe(), work).await
    }
}

/// Whether the current request may call the store: at once outside a gate,
/// else once its gate is decided.
pub(crate) async fn store_admitted() -> bool {
    let Ok(mut decision) = DECISION.try_with(|decision| decision.clone()) else { return true };
    let decided = decision.wait_for(Option::is_some).await.map(|decided| *decided);
    matches!(decided, Ok(Some(true)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn outside_a_gate_the_store_is_open() {
        assert!(store_admitted().await);
    }

    #[tokio::test]
    async fn work_behind_a_gate_waits_for_the_decision() {
        for admitted in [true, false] {
            let gate = StoreGate::new();
            let reached = Arc::new(AtomicBool::new(false));
            let work = gate.guard(async {
                let answer = store_admitted().await;
                reached.store(true, Ordering::SeqCst);
                answer
            });
            let decide = async {
                tokio::task::yield_now().await;
                assert!(!reached.load(Ordering::SeqCst), "the store call waited");
                gate.decide(admitted);
            };
            let (answer, ()) = tokio::join!(work, decide);
            assert_eq!(answer, admitted);
        }
    }

    #[tokio::test]
    async fn a_decision_made_before_the_call_holds() {
        let gate = StoreGate::new();
        gate.decide(false);
        assert!(!gate.guard(store_admitted()).await);
    }
}

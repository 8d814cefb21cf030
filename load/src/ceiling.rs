//! What this machine allows, measured in the same run: argon2id hashes per
//! second with the server's parameters on every core, and the throughput
//! of the cheapest route (`GET /health`) through the same server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use shop::auth::PasswordHasher;

#[derive(Clone, Debug, Serialize)]
pub struct Ceiling {
    pub cores: usize,
    pub argon2_per_second: f64,
    pub health_rps: f64,
}

impl Ceiling {
    /// The highest rate the mix could reach if each request cost only its
    /// unavoidable work: a hash for the `hashing_share` of requests that
    /// register, the cheapest round trip for the rest.
    pub fn for_mix(&self, hashing_share: f64) -> f64 {
        let per_request = hashing_share / self.argon2_per_second + (1.0 - hashing_share) / self.health_rps;
        if per_request > 0.0 { 1.0 / per_request } else { 0.0 }
    }
}

pub async fn measure(base_url: &str, window: Duration) -> Result<Ceiling, String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let argon2_per_second =
        tokio::task::spawn_blocking(move || hash_rate(cores, window)).await.map_err(|e| e.to_string())?;
    let health_rps = health_rate(base_url, window).await?;
    Ok(Ceiling { cores, argon2_per_second, health_rps })
}

fn hash_rate(threads: usize, window: Duration) -> f64 {
    PasswordHasher::new().hashes_per_second(threads, window)
}

/// 64 concurrent clients on `GET /health` for `window`.
async fn health_rate(base_url: &str, window: Duration) -> Result<f64, String> {
    let client = reqwest::Client::new();
    let url = format!("{base_url}/health");
    client.get(&url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, done) = (client.clone(), url.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                while started.elapsed() < window {
                    if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_ceiling_weighs_hashing_and_cheap_requests() {
        let ceiling = Ceiling { cores: 2, argon2_per_second: 60.0, health_rps: 6000.0 };
        assert!((ceiling.for_mix(0.0) - 6000.0).abs() < 1e-6);
        assert!((ceiling.for_mix(1.0) - 60.0).abs() < 1e-6);
        // 1 % hashing: 0.01/60 + 0.99/6000 s per request.
        assert!((ceiling.for_mix(0.01) - 1.0 / (0.01 / 60.0 + 0.99 / 6000.0)).abs() < 1e-6);
    }
}

//! argon2id with OWASP's parameters, run on a small pool of dedicated
//! threads so that a ~30 ms hash never stalls the async worker threads
//! serving other requests.
//!
//! Why not tokio's blocking pool: it grows to hundreds of threads under
//! load, and glibc keeps a malloc arena per thread. Each hash allocates
//! 19 MiB, which the arena keeps after it is freed, so a few dozen blocking
//! threads that once hashed hold gigabytes (measured: 2.2 GB RSS after a
//! minute of load). One hashing thread per core bounds that to
//! cores x 19 MiB, and more threads would not hash faster anyway.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use argon2::password_hash::PasswordHasher as _;
use tokio::sync::oneshot;

use crate::domain::Password;

/// OWASP Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    pool: Arc<HashPool>,
    /// A hash of a random password, verified against when a login names an
    /// unknown email, so that such a login costs the same time as a wrong
    /// password and does not reveal which emails are registered.
    decoy_hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl PasswordHasher {
    pub fn new() -> Self {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .expect("OWASP argon2 parameters are within argon2's bounds");
        let decoy = uuid::Uuid::new_v4().to_string();
        let decoy_hash = hash_blocking(&params, &decoy).expect("hashing a random ASCII string");
        PasswordHasher { params, pool: Arc::new(HashPool::new()), decoy_hash }
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        self.pool
            .run(move || hash_blocking(&params, &password))
            .await
            .unwrap_or_else(|| Err(HashError("hashing thread stopped".into())))
    }

    /// True when `password` matches `phc`. A malformed stored hash counts as
    /// a mismatch and is logged, so a corrupt record cannot be logged into.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.pool.run(move || verify_blocking(&password, &phc)).await.unwrap_or(false)
    }

    /// Spends the time of one verification and always fails.
    pub async fn verify_decoy(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.decoy_hash).await;
        false
    }

    /// Hashes `password` on the calling thread: for benchmarks measuring
    /// hashes per second.
    pub fn hash_on_this_thread(&self, password: &str) -> Result<String, HashError> {
        hash_blocking(&self.params, password)
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One thread per core, taking jobs from a shared queue.
struct HashPool {
    queue: Mutex<mpsc::Sender<Job>>,
}

impl HashPool {
    fn new() -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match receiver.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the pool was dropped
                        }
                    }
                })
                .expect("spawning a password hashing thread");
        }
        HashPool { queue: Mutex::new(sender) }
    }

    /// Runs `work` on a pool thread; `None` if the pool is gone.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.queue.lock().ok()?.send(job).ok()?;
        result.await.ok()
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashError> {
    argon2(params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("stored password hash is not a PHC string");
        return false;
    };
    // Verification takes its parameters from the stored hash, so hashes made
    // with older parameters keep working after a parameter change.
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new();
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse battery", &hash).await);
        assert!(!hasher.verify("correct horse battery!", &hash).await);
    }

    #[tokio::test]
    async fn two_hashes_of_one_password_differ_by_salt() {
        let hasher = PasswordHasher::new();
        let password = Password::parse("correct horse battery").unwrap();
        assert_ne!(hasher.hash(&password).await.unwrap(), hasher.hash(&password).await.unwrap());
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_never_verifies() {
        let hasher = PasswordHasher::new();
        assert!(!hasher.verify("anything", "not-a-phc-string").await);
        assert!(!hasher.verify_decoy("anything").await);
    }
}

//! argon2id with OWASP's parameters, run on a small pool of dedicated
//! threads so that a ~30 ms hash never stalls the async worker threads
//! serving other requests.
//!
//! Memory: argon2 needs 19 MiB of working memory per hash. Allocated per
//! call on tokio's blocking pool (which grows to dozens of threads, each
//! with its own glibc arena that keeps what it freed), the local server
//! reached 2.2 GB RSS after a minute of logins. So each pool thread keeps
//! one reusable buffer, and there is one thread per core: cores x 19 MiB
//! in all, and more threads would not hash faster anyway.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::RngCore;
use tokio::sync::oneshot;

use crate::domain::Password;

/// OWASP Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
/// 16 bytes: the PHC string format's recommendation.
const SALT_BYTES: usize = 16;

/// A hash of a random password nobody knows, with the parameters above,
/// verified against when a login names an unknown email, so that such a
/// login costs the same time as a wrong password and does not reveal which
/// emails are registered. A constant: computing one at start would cost a
/// hash, and its 19 MiB, on every cold start.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$g7IAqzCpK/NQimeZeQ2ulQ$lAn7pY5/csgFjBDsOVUjdp4wNmj7kkWZ3oeEmXYvlv0";

/// Where argon2's working memory lives between hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashMemory {
    /// One buffer per hashing thread, kept: no allocation and no page faults
    /// per hash. For a long-running server.
    Reuse,
    /// A fresh buffer per hash, freed after it. For Lambda, where an
    /// instance runs one invocation at a time and its resident memory
    /// between invocations is what counts (with glibc's mmap threshold
    /// fixed, see `lambda.rs`, the buffer goes back to the OS).
    Release,
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    memory: HashMemory,
    pool: Arc<HashPool>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl PasswordHasher {
    /// A hasher that keeps its working memory ([`HashMemory::Reuse`]).
    pub fn new() -> Self {
        Self::with_memory(HashMemory::Reuse)
    }

    pub fn with_memory(memory: HashMemory) -> Self {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .expect("OWASP argon2 parameters are within argon2's bounds");
        PasswordHasher { params, memory, pool: Arc::new(HashPool::new()) }
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let (params, memory) = (self.params.clone(), self.memory);
        let password = password.expose().to_owned();
        self.pool
            .run(move || hash_blocking(&params, &password, memory))
            .await
            .unwrap_or_else(|| Err(HashError("hashing thread stopped".into())))
    }

    /// True when `password` matches `phc`. A malformed stored hash counts as
    /// a mismatch and is logged, so a corrupt record cannot be logged into.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let (password, phc, memory) = (password.to_owned(), phc.to_owned(), self.memory);
        self.pool.run(move || verify_blocking(&password, &phc, memory)).await.unwrap_or(false)
    }

    /// Spends the time of one verification and always fails.
    pub async fn verify_decoy(&self, password: &str) -> bool {
        let _ = self.verify(password, DECOY_HASH).await;
        false
    }

    /// Hashes `password` on the calling thread: for benchmarks measuring
    /// hashes per second.
    pub fn hash_on_this_thread(&self, password: &str) -> Result<String, HashError> {
        hash_blocking(&self.params, password, self.memory)
    }

    /// Hashes per second on `threads` threads hashing for `window`: the
    /// ceiling of what register and login can reach on this machine (the
    /// benchmark example and the load tester's ceiling).
    pub fn hashes_per_second(&self, threads: usize, window: std::time::Duration) -> f64 {
        let started = std::time::Instant::now();
        let total: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut count = 0u64;
                        while started.elapsed() < window {
                            let _ = self.hash_on_this_thread("correct horse battery staple");
                            count += 1;
                        }
                        count
                    })
                })
                .collect();
            workers.into_iter().map(|worker| worker.join().unwrap_or(0)).sum()
        });
        total as f64 / started.elapsed().as_secs_f64()
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

thread_local! {
    /// argon2's 19 MiB of working memory, allocated once per thread and
    /// reused for every hash: no allocator traffic and no page faults per
    /// request, and nothing for the allocator to hoard.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2id into `out`, with this thread's reusable memory or a fresh
/// buffer, as `memory` says.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: HashMemory,
) -> argon2::Result<()> {
    if memory == HashMemory::Release {
        let mut blocks = vec![Block::default(); params.block_count()];
        return argon2.hash_password_into_with_memory(password, salt, out, blocks.as_mut_slice());
    }
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() != params.block_count() {
            blocks.clear();
            blocks.resize(params.block_count(), Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, blocks.as_mut_slice())
    })
}

fn hash_blocking(params: &Params, password: &str, memory: HashMemory) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError(e.to_string());
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2_into(&argon2, params, password.as_bytes(), &salt, &mut out, memory).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Verifies with the parameters stored in the hash, so hashes made with
/// older parameters keep working after a parameter change.
fn verify_blocking(password: &str, phc: &str, memory: HashMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("stored password hash is not a PHC string");
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or_default();
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if argon2_into(&argon2, &params, password.as_bytes(), salt.as_ref(), &mut out, memory).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
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
    async fn hashes_from_the_reference_implementation_still_verify() {
        // Made by argon2's own `PasswordHasher` with the same parameters.
        use argon2::password_hash::PasswordHasher as _;
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        let hasher = PasswordHasher::new();
        assert!(hasher.verify("correct horse battery", &reference).await);
        assert!(!hasher.verify("correct horse battery?", &reference).await);
        let ours = hasher.hash(&Password::parse("correct horse battery").unwrap()).await.unwrap();
        assert!(
            argon2::PasswordVerifier::verify_password(&Argon2::default(), b"correct horse battery", ours.as_str())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn both_memory_policies_make_and_check_the_same_hashes() {
        let reuse = PasswordHasher::new();
        let release = PasswordHasher::with_memory(HashMemory::Release);
        let password = Password::parse("correct horse battery").unwrap();
        assert!(release.verify("correct horse battery", &reuse.hash(&password).await.unwrap()).await);
        assert!(reuse.verify("correct horse battery", &release.hash(&password).await.unwrap()).await);
    }

    #[test]
    fn the_decoy_is_a_hash_with_the_current_parameters() {
        let parsed = PasswordHash::new(DECOY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!((params.m_cost(), params.t_cost(), params.p_cost()), (MEMORY_KIB, ITERATIONS, PARALLELISM));
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_never_verifies() {
        let hasher = PasswordHasher::new();
        assert!(!hasher.verify("anything", "not-a-phc-string").await);
        assert!(!hasher.verify_decoy("anything").await);
    }
}

//! The Redis adapter (ElastiCache Serverless / Valkey, or `redis-server`).
//!
//! One multiplexed connection per process, opened lazily and re-opened by
//! redis-rs's connection manager after a failure. Every command has a short
//! time limit: a cache that hangs must cost a request milliseconds, not the
//! Lambda's whole timeout.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Cache, CacheError};
use crate::tls::{RootSource, trusted_roots_pem};

/// Longest a cache call may take before the caller goes on without it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The Redis-backed adapter.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
}

fn unavailable(err: impl std::fmt::Display) -> CacheError {
    CacheError(err.to_string())
}

/// Makes ring the process's rustls provider, unless one is installed.
///
/// rustls 0.23.48 deprecated ring's provider because it has no
/// post-quantum key exchange; the alternative, aws-lc, adds about a
/// megabyte of C to every Lambda binary (see the workspace Cargo.toml), and
/// the one TLS peer this serves is ElastiCache inside the VPC, which offers
/// no post-quantum group either. Revisit when the functions move to aws-lc.
#[allow(deprecated)]
fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RedisCache {
    /// Parses `url` (`redis://` or `rediss://` for in-transit TLS) without
    /// connecting: the first command connects, so a cache that is down at
    /// start does not keep the API from starting.
    pub fn connect(url: &str) -> Result<Self, CacheError> {
        // redis-rs builds its rustls config from the process-wide crypto
        // provider; name ring rather than rely on it being the only one
        // compiled in (a host build may link aws-lc through other crates).
        install_ring_provider();
        let client = client(url).map_err(|e| CacheError(format!("CACHE_URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = client.get_connection_manager_lazy(config).map_err(unavailable)?;
        Ok(RedisCache { connection })
    }

    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, CacheError> {
        let mut connection = self.connection.clone();
        within_timeout(command.query_async(&mut connection)).await
    }
}

/// A command's (or a pipeline's) answer, or a cache error once it took
/// longer than twice [`COMMAND_TIMEOUT`] (one retry's worth).
async fn within_timeout<T>(query: impl Future<Output = redis::RedisResult<T>>) -> Result<T, CacheError> {
    tokio::time::timeout(COMMAND_TIMEOUT * 2, query)
        .await
        .map_err(|_| CacheError("redis command timed out".into()))?
        .map_err(unavailable)
}

/// The client of `url`. Over TLS it trusts the roots of [`crate::tls`]:
/// redis-rs's own compiled-in Mozilla roots, or the operator's named store.
fn client(url: &str) -> redis::RedisResult<redis::Client> {
    let named = RootSource::from_env() == RootSource::Named;
    if named && url.starts_with("rediss://") {
        let root_cert = Some(trusted_roots_pem(RootSource::Named));
        redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls: None, root_cert })
    } else {
        redis::Client::open(url)
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    async fn get_two(&self, first: &str, second: &str) -> Result<[Option<Vec<u8>>; 2], CacheError> {
        let mut connection = self.connection.clone();
        let pipeline = redis::pipe().cmd("GET").arg(first).cmd("GET").arg(second).to_owned();
        let (first, second) = within_timeout(pipeline.query_async(&mut connection)).await?;
        Ok([first, second])
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.run(redis::cmd("SET").arg(key).arg(value).arg("PX").arg(millis(ttl))).await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.run::<i64>(redis::cmd("DEL").arg(key)).await.map(|_| ())
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        // INCR and PEXPIRE NX in one MULTI: the counter gets its expiry when
        // created and never loses it, even if this process dies in between.
        let mut connection = self.connection.clone();
        let pipeline = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(key)
            .cmd("PEXPIRE")
            .arg(key)
            .arg(millis(ttl))
            .arg("NX")
            .ignore()
            .to_owned();
        let (count,): (u64,) = tokio::time::timeout(COMMAND_TIMEOUT * 2, pipeline.query_async(&mut connection))
            .await
            .map_err(|_| CacheError("redis command timed out".into()))?
            .map_err(unavailable)?;
        Ok(count)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

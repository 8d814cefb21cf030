//! The DynamoDB adapter: one table, keys designed for the access patterns.
//!
//! # Keys
//!
//! | item | `PK` | `SK` | notes |
//! | --- | --- | --- | --- |
//! | user | `USER#<id>` | `PROFILE` | user by id; `sessionVersion` checked with every token |
//! | email claim | `EMAIL#<email>` | `EMAIL` | `userId`; uniqueness and user by email |
//! | revoked token | `TOKEN#<jti>` | `REVOKED` | `expiresAt` is the table's TTL attribute |
//! | category | `CATEGORY#<key>` | `CATEGORY` | GSI1 `CATEGORIES` / `<key>`: all categories by name |
//! | product | `PRODUCT#<id>` | `PRODUCT` | GSI1 `PRODUCTS` / `<id>`: newest first (UUID v7 ids); GSI2 `CATEGORY#<key>` / `<price:012>#<id>`: a category by price |
//! | order | `ORDER#<id>` | `ORDER` | lines as JSON; GSI1 `ORDERS#USER#<user>` / `<id>`: a user's orders newest first; GSI2 `ORDERS#STATUS#<status>` / `<id>`: orders by status |
//! | idempotency record | `IDEMPOTENCY#<user>#<key>` | `IDEMPOTENCY` | claim token, lease, stored response; `expiresAt` TTL |
//! | logged event | `EVENT#<id>` | `EVENT` | the envelope as JSON; GSI1 `EVENTS` / `<position>`: newest first; GSI2 `EVENTS#<type>` / `<position>`: one type; `expiresAt` TTL (30 days) |
//!
//! The table's stream (`NEW_AND_OLD_IMAGES`) is the change feed: every
//! write of a user, category, product or order item is a change record,
//! atomically with the write ([`stream`]).
//!
//! The table has two generic indexes, `GSI1` and `GSI2` (keys
//! `GSI1PK`/`GSI1SK`, `GSI2PK`/`GSI2SK`), shared by the patterns above.
//! Filters no index serves (search words, stock, a price range without a
//! category) are filter expressions on an index query, never a Scan.
//! Every multi-item change is one `TransactWriteItems`; the mapping of its
//! condition failures to domain errors lives in [`errors`].

mod catalog;
mod errors;
mod event_log;
mod items;
mod orders;
mod paging;
pub mod stream;
pub mod table;
mod users;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::{Store, StoreError};
use crate::config::Config;
use errors::classify;
use items::Key;

/// The DynamoDB-backed store.
#[derive(Clone)]
pub struct DynamoStore {
    /// Reads: the SDK retries them (idempotent) with jittered backoff, all
    /// within the request's deadline.
    client: Client,
    /// Writes: never retried by the SDK. A write that timed out may have
    /// landed; retried blindly, a conditional put would then fail on its
    /// own success (a new user told their email is taken). Transactions
    /// that only conflicted are retried by [`errors::send_transaction`],
    /// which is safe: a cancelled transaction wrote nothing.
    writer: Client,
    table: String,
}

impl DynamoStore {
    /// Builds a client for the configured table and endpoint. With an
    /// endpoint override (DynamoDB Local) and no credentials or region in
    /// the environment, fixed local ones are used rather than letting the
    /// SDK probe instance metadata that a laptop does not have.
    pub async fn connect(config: &Config) -> Self {
        let client = Client::from_conf(sdk_config(config).await);
        DynamoStore::from_client(client, &config.table_name)
    }

    pub fn from_client(client: Client, table: &str) -> Self {
        let writer = Client::from_conf(client.config().to_builder().retry_config(RetryConfig::disabled()).build());
        DynamoStore { client, writer, table: table.to_owned() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn put(&self, item: items::Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn get(&self, key: Key) -> Result<Option<items::Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.into_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item)
    }
}

/// The SDK's own bounds, under the request deadline that bounds every call
/// anyway: an attempt may take half of a request's time, so a read that
/// timed out once can still be retried within it.
fn timeouts(config: &Config) -> TimeoutConfig {
    let attempt = config.request_timeout / 2;
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(2)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(config.request_timeout)
        .build()
}

/// The SDK's HTTP client: rustls on ring (not the default aws-lc), trusting
/// the system's root certificates, and plain HTTP for a local endpoint.
/// Public for the operator commands' other AWS clients.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The full AWS configuration chain (profiles, SSO, instance metadata...).
#[cfg(feature = "aws-config")]
async fn sdk_config(config: &Config) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::Config::from(&shared_config(config).await)
}

/// What every AWS client of a process outside Lambda is built from (the
/// table's, the stream poller's): the configuration chain, with local
/// defaults when the endpoint is DynamoDB Local.
#[cfg(feature = "aws-config")]
pub async fn shared_config(config: &Config) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(https_client()).timeout_config(timeouts(config));
    if let Some(endpoint) = &config.dynamodb_endpoint {
        loader = loader.endpoint_url(endpoint);
        if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
            loader = loader.region(Region::new("us-east-1"));
        }
        if env("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
    }
    loader.load().await
}

/// What Lambda provides: region and credentials in environment variables
/// (fixed local ones when there are none, as under a local emulator).
pub fn lambda_environment() -> (Region, Credentials) {
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "environment"),
        _ => Credentials::new("local", "local", None, None, "local"),
    };
    (Region::new(region), credentials)
}

/// What Lambda provides: region and credentials in environment variables.
#[cfg(not(feature = "aws-config"))]
async fn sdk_config(config: &Config) -> aws_sdk_dynamodb::Config {
    let (region, credentials) = lambda_environment();
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .region(region)
        .credentials_provider(credentials)
        .retry_config(RetryConfig::standard())
        .timeout_config(timeouts(config));
    builder.set_endpoint_url(config.dynamodb_endpoint.clone());
    builder.build()
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.get(Key::health()).await.map(|_| ())
    }

    fn kind(&self) -> &'static str {
        "dynamodb"
    }
}

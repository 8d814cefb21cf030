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
//! | product | `PRODUCT#<id>` | `PRODUCT` | the product and, with one stock counter, its exact stock; in no index, so that orders (which rewrite it) write no index partition |
//! | stock counter | `STOCK#<product>#<k>` | `STOCK` | one of the `stockCounters` items holding a counted product's units, each its own partition (`stock`); `entity` = `stockCounter`, which the change feed ignores; no index |
//! | product listing entry | `PRODUCT#<id>` | `LISTING` | a copy of the product (`entity` = `productListing`, which the change feed ignores), written by catalog changes and, from the feed, sell-outs and restocks (see `items::listing_item`); GSI1 `PRODUCTS` / `<id>`: newest first (UUID v7 ids); GSI2 `CATEGORY#<key>` / `<price:012>#<id>`: a category by price; a deleted product's is a tombstone in no index |
//! | order | `ORDER#<id>` | `ORDER` | lines as JSON; GSI1 `ORDERS#USER#<user>` / `<id>`: a user's orders newest first; GSI2 `ORDERS#STATUS#<status>#<shard>` / `<id>`: orders by status, in 48 shards (`shards.rs`) |
//! | cart | `CART#<user>` | `CART` | lines as JSON, `version` for compare-and-set; `expiresAt` TTL (`CART_TTL_DAYS`); no index |
//! | idempotency record | `IDEMPOTENCY#<user>#<key>` | `IDEMPOTENCY` | claim token, lease, stored response; `expiresAt` TTL |
//! | search entry | `SEARCH#<key>` | `<product id>` | a copy of the product under one index key; GSI1 `SEARCH#<key>#IN` / `<id>` while in stock; GSI2 `SEARCH#<category>#<key>` / `<price:012>#<id>` (`search`) |
//! | logged event | `EVENT#<id>` | `EVENT` | the envelope as JSON; GSI1 `EVENTS#<shard>` / `<position>`: newest first; GSI2 `EVENTS#<type>#<shard>` / `<position>`: one type, in 96 shards (`shards.rs`); `expiresAt` TTL (30 days) |
//!
//! The table's stream (`NEW_AND_OLD_IMAGES`) is the change feed: every
//! write of a user, category, product or order item is a change record,
//! atomically with the write ([`stream`]).
//!
//! The table has two generic indexes, `GSI1` and `GSI2` (keys
//! `GSI1PK`/`GSI1SK`, `GSI2PK`/`GSI2SK`), shared by the patterns above.
//! Search words read the search entries (`search`); filters no key serves
//! (stock, a price range without a category) are filter expressions on an
//! index query, never a Scan.
//! Every multi-item change is one `TransactWriteItems`; the mapping of its
//! condition failures to domain errors lives in `errors`.

mod capacity;
mod carts;
mod catalog;
mod errors;
mod event_log;
pub mod heat;
mod items;
mod orders;
mod paging;
mod partitions;
mod search;
mod shards;
mod stock;
pub mod stream;
pub mod table;
mod users;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::ConfigBag;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use super::{Store, StoreError};
use crate::config::Config;
use crate::tls::RootSource;
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
    /// What this process last read of counted products' counters: where
    /// their orders take units from (see [`stock`]).
    hints: std::sync::Arc<stock::CounterHints>,
}

impl DynamoStore {
    /// Builds a client for the configured table and endpoint. With an
    /// endpoint override (DynamoDB Local) and no credentials or region in
    /// the environment, fixed local ones are used rather than letting the
    /// SDK probe instance metadata that a laptop does not have.
    pub async fn connect(config: &Config) -> Self {
        let mut sdk = sdk_config(config).await;
        if config.dynamodb_consumed_capacity {
            sdk = sdk.interceptor(capacity::RecordConsumedCapacity);
        }
        if let Some(path) = &config.dynamodb_partition_report {
            sdk = sdk.interceptor(partitions::RecordPartitionHeat::new(path.clone()));
        }
        let client = Client::from_conf(sdk.build());
        DynamoStore::from_client(client, &config.table_name)
    }

    pub fn from_client(client: Client, table: &str) -> Self {
        let writer = Client::from_conf(client.config().to_builder().retry_config(RetryConfig::disabled()).build());
        DynamoStore { client, writer, table: table.to_owned(), hints: Default::default() }
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

    /// A strongly consistent read: every lookup by key may follow a write
    /// the caller just made or must see (a login after registering, a
    /// token's revocation, an order after placing it, and the catalog
    /// cache's fill, which would otherwise keep a stale product under the
    /// new generation until the entry expires).
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
/// the roots of [`crate::tls`], and plain HTTP for a local endpoint.
/// Public for the operator commands' other AWS clients.
pub fn https_client() -> SharedHttpClient {
    let roots = tls::TrustStore::empty().with_pem_certificate(crate::tls::trusted_roots_pem(RootSource::from_env()));
    let context =
        tls::TlsContext::builder().with_trust_store(roots).build().expect("a TLS context without server names");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    SharedHttpClient::new(ConnectorOnFirstRequest(client))
}

/// The SDK's client builds a throw-away connector whenever an SDK client is
/// made (to load a system trust store early), then the one it keeps at the
/// first request; each build parses the PEM roots (~0.5 ms for Mozilla's
/// ~145). Skipping the early build leaves one parse per process, at the
/// first request: the reading and the writing [`Client`] share the kept
/// connector (same HTTP client, same timeouts).
#[derive(Debug)]
struct ConnectorOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectorOnFirstRequest {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The full AWS configuration chain (profiles, SSO, instance metadata...).
#[cfg(feature = "aws-config")]
async fn sdk_config(config: &Config) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(&shared_config(config).await)
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

/// The endpoint a service's client is pointed at, as the AWS SDKs choose
/// it: the service's own variable (`AWS_ENDPOINT_URL_SQS`...), else
/// `AWS_ENDPOINT_URL` (what LocalStack gives every function), else none
/// (AWS's). An empty value counts as unset: the template declares the
/// service variables empty so that `sam local` may fill them in.
pub fn endpoint_url(service_variable: &str) -> Option<String> {
    env(service_variable).or_else(|| env("AWS_ENDPOINT_URL"))
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
async fn sdk_config(config: &Config) -> aws_sdk_dynamodb::config::Builder {
    let (region, credentials) = lambda_environment();
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .region(region)
        .credentials_provider(credentials)
        .retry_config(RetryConfig::standard())
        .timeout_config(timeouts(config));
    builder.set_endpoint_url(config.dynamodb_endpoint.clone());
    builder
}

#[async_trait]
impl Store for DynamoStore {
    /// An eventually consistent read of one key: half the read units of
    /// the strongly consistent reads every other lookup makes, and proof
    /// enough that the table answers.
    async fn ping(&self) -> Result<(), StoreError> {
        let read = self.client.get_item().table_name(&self.table).set_key(Some(Key::health().into_item()));
        read.send().await.map(|_| ()).map_err(classify)
    }

    fn kind(&self) -> &'static str {
        "dynamodb"
    }
}

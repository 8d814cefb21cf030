//! The DynamoDB adapter: one table, keys designed for the access patterns.
//!
//! # Keys
//!
//! | item | `PK` | `SK` | notes |
//! | --- | --- | --- | --- |
//! | user | `USER#<id>` | `PROFILE` | user by id |
//! | email claim | `EMAIL#<email>` | `EMAIL` | `userId`; uniqueness and user by email |
//! | revoked token | `TOKEN#<jti>` | `REVOKED` | `expiresAt` is the table's TTL attribute |
//!
//! The table also has two generic indexes, `GSI1` and `GSI2` (keys
//! `GSI1PK`/`GSI1SK`, `GSI2PK`/`GSI2SK`), for the catalog and order patterns.
//! Every multi-item change is one `TransactWriteItems`; the mapping of its
//! condition failures to domain errors lives in [`errors`].

mod errors;
mod items;
pub mod table;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use time::OffsetDateTime;

use super::{Store, StoreError, UserStore};
use crate::config::Config;
use crate::domain::{Email, User, UserId};
use errors::{classify, transaction_conflict};
use items::{Key, attr_s, user_from_item, user_to_item};

/// The DynamoDB-backed store.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Builds a client from the usual AWS environment and the configured
    /// endpoint override. With an endpoint
    /// override (DynamoDB Local) and no credentials or region in the
    /// environment, fixed local ones are used rather than letting the SDK
    /// probe instance metadata that a laptop does not have.
    pub async fn connect(config: &Config) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        );
        if let Some(endpoint) = &config.dynamodb_endpoint {
            loader = loader.endpoint_url(endpoint);
            if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
                loader = loader.region(Region::new("us-east-1"));
            }
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "local"));
            }
        }
        let sdk_config = loader.load().await;
        DynamoStore::from_client(Client::new(&sdk_config), &config.table_name)
    }

    pub fn from_client(client: Client, table: &str) -> Self {
        DynamoStore { client, table: table.to_owned() }
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

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.put(user_to_item(user), "attribute_not_exists(PK)")?)
            .transact_items(self.put(items::email_claim(&user.email, user.id), "attribute_not_exists(PK)")?)
            .send()
            .await;
        result.map(|_| ()).map_err(|err| {
            transaction_conflict(err, |index| match index {
                1 => StoreError::EmailTaken,
                _ => StoreError::Internal("user id collision".into()),
            })
        })
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.get(Key::user(id)).await?.map(|item| user_from_item(&item)).transpose()
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let Some(claim) = self.get(Key::email(email)).await? else { return Ok(None) };
        let id = UserId::parse(&attr_s(&claim, "userId")?)
            .ok_or_else(|| StoreError::Internal("email claim with a malformed userId".into()))?;
        self.user_by_id(id).await
    }

    async fn update_user(&self, user: &User, previous_email: &Email) -> Result<(), StoreError> {
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(self.put(user_to_item(user), "attribute_exists(PK)")?);
        if &user.email != previous_email {
            let release = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Key::email(previous_email).into_item()))
                .condition_expression("userId = :id")
                .expression_attribute_values(":id", AttributeValue::S(user.id.to_string()))
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            request = request
                .transact_items(TransactWriteItem::builder().delete(release).build())
                .transact_items(self.put(items::email_claim(&user.email, user.id), "attribute_not_exists(PK)")?);
        }
        request.send().await.map(|_| ()).map_err(|err| {
            transaction_conflict(err, |index| match index {
                0 => StoreError::NotFound,
                2 => StoreError::EmailTaken,
                _ => StoreError::Internal("email claim does not belong to the user".into()),
            })
        })
    }

    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let mut item = Key::revoked_token(jti).into_item();
        item.insert("expiresAt".into(), AttributeValue::N(expires_at.unix_timestamp().to_string()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.get(Key::revoked_token(jti)).await?.is_some())
    }
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

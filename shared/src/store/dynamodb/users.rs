//! Users, email claims and revoked tokens.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use time::OffsetDateTime;

use super::errors::{classify, transaction_conflict};
use super::items::{self, Key, attr_s, user_from_item, user_to_item};
use super::DynamoStore;
use crate::domain::{Email, User, UserId};
use crate::store::{StoreError, TokenStanding, UserStore};

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let result = self
            .writer
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

    async fn update_user(&self, user: &User, previous: &User) -> Result<(), StoreError> {
        // The write stands only on the user as read: same email, same
        // session version (attribute absent: written before versions, 0).
        let replace = Put::builder()
            .table_name(&self.table)
            .set_item(Some(user_to_item(user)))
            .condition_expression(
                "attribute_exists(PK) AND email = :email \
                 AND (attribute_not_exists(sessionVersion) OR sessionVersion = :version)",
            )
            .expression_attribute_values(":email", AttributeValue::S(previous.email.as_str().to_owned()))
            .expression_attribute_values(":version", AttributeValue::N(previous.session_version.to_string()))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut request =
            self.writer.transact_write_items().transact_items(TransactWriteItem::builder().put(replace).build());
        if user.email != previous.email {
            let release = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Key::email(&previous.email).into_item()))
                .condition_expression("userId = :id")
                .expression_attribute_values(":id", AttributeValue::S(user.id.to_string()))
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            request = request
                .transact_items(TransactWriteItem::builder().delete(release).build())
                .transact_items(self.put(items::email_claim(&user.email, user.id), "attribute_not_exists(PK)")?);
        }
        let Err(err) = request.send().await else { return Ok(()) };
        match transaction_conflict(err, |index| match index {
            0 => StoreError::NotFound,
            2 => StoreError::EmailTaken,
            _ => StoreError::Internal("email claim does not belong to the user".into()),
        }) {
            // The first condition failed: tell a missing user from a changed one.
            StoreError::NotFound if self.get(Key::user(user.id)).await?.is_some() => Err(StoreError::UserChanged),
            other => Err(other),
        }
    }

    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let mut item = Key::revoked_token(jti).into_item();
        item.insert("expiresAt".into(), AttributeValue::N(expires_at.unix_timestamp().to_string()));
        self.writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn token_standing(&self, user: UserId, jti: &str) -> Result<TokenStanding, StoreError> {
        // Two point reads at once: the latency of one round trip. Only the
        // session version is read of the user item, not its password hash.
        let session = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Key::user(user).into_item()))
            .projection_expression("PK, sessionVersion")
            .consistent_read(true)
            .send();
        let (session, revocation) = tokio::join!(session, self.get(Key::revoked_token(jti)));
        let session_version = session.map_err(classify)?.item.map(|item| items::session_version(&item)).transpose()?;
        Ok(TokenStanding { revoked: revocation?.is_some(), session_version })
    }
}


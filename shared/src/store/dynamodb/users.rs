//! Users, email claims and revoked tokens.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::{classify, send_transaction, transaction_conflict};
use super::items::{self, Key, attr_s, n, s, timestamp, user_from_item, user_to_item};
use super::paging::collect;
use crate::domain::{Email, Role, User, UserId, UserStatus};
use crate::store::{StoreError, TokenStanding, UserPage, UserQuery, UserStanding, UserStore};

/// Items a listing query reads per round trip, and round trips per page:
/// filters may skip most users, so one page may take several reads.
const USERS_PER_QUERY: i32 = 100;
const MAX_QUERIES_PER_PAGE: usize = 10;

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut request = self
            .writer
            .transact_write_items()
            .transact_items(self.put(user_to_item(user), "attribute_not_exists(PK)")?)
            .transact_items(self.put(items::email_claim(&user.email, user.id), "attribute_not_exists(PK)")?);
        if user.is_active_admin() {
            request = request.transact_items(self.count_admins(1)?);
        }
        let result = request.send().await;
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
                "attribute_exists(PK) AND email = :email AND #role = :role \
                 AND (attribute_not_exists(sessionVersion) OR sessionVersion = :version)",
            )
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":role", s(previous.role.as_str()))
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
        self.writer.put_item().table_name(&self.table).set_item(Some(item)).send().await.map(|_| ()).map_err(classify)
    }

    async fn token_standing(&self, user: UserId, jti: &str) -> Result<TokenStanding, StoreError> {
        // Two point reads at once: the latency of one round trip. Only the
        // session version is read of the user item, not its password hash.
        let session = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Key::user(user).into_item()))
            .projection_expression("PK, sessionVersion, #role, #status")
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#status", "status")
            .consistent_read(true)
            .send();
        let (session, revocation) = tokio::join!(session, self.get(Key::revoked_token(jti)));
        let user = session.map_err(classify)?.item.map(|item| standing_of(&item)).transpose()?;
        Ok(TokenStanding { revoked: revocation?.is_some(), user })
    }

    async fn change_user_access(
        &self,
        current: &User,
        role: Role,
        status: UserStatus,
        at: OffsetDateTime,
    ) -> Result<User, StoreError> {
        let mut updated = current.clone();
        if status == UserStatus::Disabled && current.status == UserStatus::Active {
            updated.session_version += 1;
        }
        (updated.role, updated.status, updated.updated_at) = (role, status, at);
        let mut request = self.writer.transact_write_items().transact_items(self.access_update(current, &updated)?);
        match (current.is_active_admin(), updated.is_active_admin()) {
            (true, false) => request = request.transact_items(self.count_admins(-1)?),
            (false, true) => request = request.transact_items(self.count_admins(1)?),
            _ => {}
        }
        let Err(err) = send_transaction(request).await else { return Ok(updated) };
        match transaction_conflict(err, |index| match index {
            0 => StoreError::NotFound,
            _ => StoreError::LastAdmin,
        }) {
            StoreError::NotFound if self.get(Key::user(current.id)).await?.is_some() => Err(StoreError::UserChanged),
            other => Err(other),
        }
    }

    async fn list_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let mut filters = Vec::new();
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :users")
            .expression_attribute_values(":users", s(items::USERS_PARTITION))
            .scan_index_forward(false)
            .limit(USERS_PER_QUERY);
        if let Some(prefix) = &query.prefix {
            filters.push("(begins_with(email, :prefix) OR begins_with(nameLower, :prefix))");
            request = request.expression_attribute_values(":prefix", s(prefix.clone()));
        }
        if let Some(role) = query.role {
            filters.push("#role = :role");
            request = request
                .expression_attribute_names("#role", "role")
                .expression_attribute_values(":role", s(role.as_str()));
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        let start = query.after.map(users_index_key);
        let page = collect(request, start, query.limit, MAX_QUERIES_PER_PAGE, user_from_item).await?;
        // The query budget ran out mid-index: resume after what was examined.
        let next = page.next(|last| last.id, |key| Ok(UserId::parse(&attr_s(key, "GSI1SK")?)))?;
        Ok(UserPage { items: page.items, next })
    }
}

impl DynamoStore {
    /// Sets role, status, session version and update time, conditioned on
    /// the role and status as the caller read them.
    fn access_update(&self, current: &User, updated: &User) -> Result<TransactWriteItem, StoreError> {
        // Users written before `status` existed are active.
        let status_as_read = match current.status {
            UserStatus::Active => "(#status = :oldStatus OR attribute_not_exists(#status))",
            UserStatus::Disabled => "#status = :oldStatus",
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Key::user(current.id).into_item()))
            .update_expression("SET #role = :role, #status = :status, sessionVersion = :version, updatedAt = :at")
            .condition_expression(format!("attribute_exists(PK) AND #role = :oldRole AND {status_as_read}"))
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":role", s(updated.role.as_str()))
            .expression_attribute_values(":status", s(updated.status.as_str()))
            .expression_attribute_values(":version", n(updated.session_version))
            .expression_attribute_values(":at", timestamp(updated.updated_at))
            .expression_attribute_values(":oldRole", s(current.role.as_str()))
            .expression_attribute_values(":oldStatus", s(current.status.as_str()))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Moves the count of active admins by `delta`; taking one away is
    /// conditioned on another remaining.
    fn count_admins(&self, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Key::admin_count().into_item()))
            .update_expression("ADD active :delta")
            .expression_attribute_values(":delta", n(delta));
        if delta < 0 {
            update = update.condition_expression("active > :one").expression_attribute_values(":one", n(1));
        }
        let update = update.build().map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn standing_of(item: &items::Item) -> Result<UserStanding, StoreError> {
    Ok(UserStanding {
        session_version: items::session_version(item)?,
        role: Role::parse(&attr_s(item, "role")?)
            .ok_or_else(|| StoreError::Internal("user item role: unknown".into()))?,
        status: items::user_status(item)?,
    })
}

/// GSI1's position of the user `id`, for resuming a listing after it.
fn users_index_key(id: UserId) -> items::Item {
    let mut key = Key::user(id).into_item();
    key.insert("GSI1PK".into(), s(items::USERS_PARTITION));
    key.insert("GSI1SK".into(), s(id.to_string()));
    key
}

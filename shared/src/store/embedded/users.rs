//! Users, email claims and revoked tokens in redb.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
use time::OffsetDateTime;

use super::outbox::{Written, record_change};
use super::records::UserRecord;
use super::{EmbeddedStore, REVOKED_TOKENS, USER_EMAILS, USERS, internal};
use crate::domain::{Email, Role, User, UserId, UserStatus};
use crate::store::{StoreError, TokenStanding, UserPage, UserQuery, UserStanding, UserStore};

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let record = UserRecord::from(user).to_bytes()?;
        let (id, email) = (user.id.to_string(), user.email.as_str().to_owned());
        let user = user.clone();
        self.writing(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut emails = txn.open_table(USER_EMAILS).map_err(internal)?;
                if emails.get(email.as_str()).map_err(internal)?.is_some() {
                    return Err(StoreError::EmailTaken);
                }
                emails.insert(email.as_str(), id.as_str()).map_err(internal)?;
                txn.open_table(USERS).map_err(internal)?.insert(id.as_str(), record.as_slice()).map_err(internal)?;
            }
            record_change(&txn, None, Some(Written::User(&user)))?;
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            let found = users.get(id.to_string().as_str()).map_err(internal)?;
            found.map(|bytes| UserRecord::from_bytes(bytes.value())).transpose()
        })
        .await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let email = email.as_str().to_owned();
        self.blocking(move |db| {
            // One read transaction for both lookups: a consistent snapshot.
            let txn = db.begin_read().map_err(internal)?;
            let emails = txn.open_table(USER_EMAILS).map_err(internal)?;
            let Some(id) = emails.get(email.as_str()).map_err(internal)? else { return Ok(None) };
            let users = txn.open_table(USERS).map_err(internal)?;
            let found = users.get(id.value()).map_err(internal)?;
            found.map(|bytes| UserRecord::from_bytes(bytes.value())).transpose()
        })
        .await
    }

    async fn update_user(&self, user: &User, previous: &User) -> Result<(), StoreError> {
        let record = UserRecord::from(user).to_bytes()?;
        let (id, email) = (user.id.to_string(), user.email.as_str().to_owned());
        let read = (previous.email.clone(), previous.session_version, previous.role);
        let previous = previous.email.as_str().to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut users = txn.open_table(USERS).map_err(internal)?;
                let stored = users.get(id.as_str()).map_err(internal)?;
                let stored = stored.map(|bytes| UserRecord::from_bytes(bytes.value())).transpose()?;
                let Some(stored) = stored else { return Err(StoreError::NotFound) };
                if (stored.email, stored.session_version, stored.role) != read {
                    return Err(StoreError::UserChanged);
                }
                if email != previous {
                    let mut emails = txn.open_table(USER_EMAILS).map_err(internal)?;
                    if emails.get(email.as_str()).map_err(internal)?.is_some() {
                        return Err(StoreError::EmailTaken);
                    }
                    emails.remove(previous.as_str()).map_err(internal)?;
                    emails.insert(email.as_str(), id.as_str()).map_err(internal)?;
                }
                users.insert(id.as_str(), record.as_slice()).map_err(internal)?;
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn revoke_token(&self, jti: &str, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let jti = jti.to_owned();
        self.blocking(move |db| {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut revoked = txn.open_table(REVOKED_TOKENS).map_err(internal)?;
                revoked.insert(jti.as_str(), expires_at.unix_timestamp()).map_err(internal)?;
                // Sweep records of tokens that have expired since: what
                // DynamoDB's TTL does for the other adapter.
                revoked.retain(|_, expiry| expiry > now).map_err(internal)?;
            }
            txn.commit().map_err(internal)
        })
        .await
    }

    async fn token_standing(&self, user: UserId, jti: &str) -> Result<TokenStanding, StoreError> {
        let jti = jti.to_owned();
        self.blocking(move |db| {
            // One read transaction: the revocation and the version come
            // from the same snapshot.
            let txn = db.begin_read().map_err(internal)?;
            let revoked = txn.open_table(REVOKED_TOKENS).map_err(internal)?;
            let revoked = revoked.get(jti.as_str()).map_err(internal)?.is_some();
            let users = txn.open_table(USERS).map_err(internal)?;
            let found = users.get(user.to_string().as_str()).map_err(internal)?;
            let user = found.map(|bytes| UserRecord::from_bytes(bytes.value())).transpose()?;
            Ok(TokenStanding { revoked, user: user.as_ref().map(UserStanding::from) })
        })
        .await
    }

    async fn change_user_access(
        &self,
        current: &User,
        role: Role,
        status: UserStatus,
        at: OffsetDateTime,
    ) -> Result<User, StoreError> {
        let id = current.id.to_string();
        let read = (current.role, current.status);
        self.blocking(move |db| {
            // One write transaction: serialised with every other write, so
            // the count of active admins cannot change under it.
            let txn = db.begin_write().map_err(internal)?;
            let updated = {
                let mut users = txn.open_table(USERS).map_err(internal)?;
                let stored = users.get(id.as_str()).map_err(internal)?;
                let stored = stored.map(|bytes| UserRecord::from_bytes(bytes.value())).transpose()?;
                let Some(mut user) = stored else { return Err(StoreError::NotFound) };
                if (user.role, user.status) != read {
                    return Err(StoreError::UserChanged);
                }
                let was_active_admin = user.is_active_admin();
                if status == UserStatus::Disabled && user.status == UserStatus::Active {
                    user.session_version += 1;
                }
                (user.role, user.status, user.updated_at) = (role, status, at);
                if was_active_admin && !user.is_active_admin() && !another_active_admin(&users, &id)? {
                    return Err(StoreError::LastAdmin);
                }
                let record = UserRecord::from(&user).to_bytes()?;
                users.insert(id.as_str(), record.as_slice()).map_err(internal)?;
                user
            };
            txn.commit().map_err(internal)?;
            Ok(updated)
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let query = query.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let users = txn.open_table(USERS).map_err(internal)?;
            // UUID v7 ids sort by creation time: newest first is backwards.
            let after = query.after.map(|id| id.to_string());
            let range = match &after {
                Some(after) => users.range::<&str>(..after.as_str()),
                None => users.range::<&str>(..),
            }
            .map_err(internal)?;
            let mut items = Vec::with_capacity(query.limit + 1);
            for entry in range.rev() {
                let (_, bytes) = entry.map_err(internal)?;
                let user = UserRecord::from_bytes(bytes.value())?;
                if !query.matches(&user) {
                    continue;
                }
                items.push(user);
                if items.len() > query.limit {
                    items.truncate(query.limit);
                    let next = items.last().map(|last| last.id);
                    return Ok(UserPage { items, next });
                }
            }
            Ok(UserPage { items, next: None })
        })
        .await
    }
}

/// Whether an active admin other than `id` exists. A scan, inside the
/// write transaction that needs it: role changes are rare and a local
/// store's users few.
fn another_active_admin(users: &redb::Table<&str, &[u8]>, id: &str) -> Result<bool, StoreError> {
    for entry in users.iter().map_err(internal)? {
        let (key, bytes) = entry.map_err(internal)?;
        if key.value() != id && UserRecord::from_bytes(bytes.value())?.is_active_admin() {
            return Ok(true);
        }
    }
    Ok(false)
}

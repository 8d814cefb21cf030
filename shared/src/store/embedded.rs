//! The embedded store: one redb file under `DATA_DIR`.
//!
//! redb gives serialisable write transactions, so each multi-record change
//! (a user and its email claim) is one transaction, as it is one
//! `TransactWriteItems` on DynamoDB. Records are JSON; redb calls are
//! blocking and run on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError, UserStore};
use crate::domain::{Email, Role, User, UserId, UserName};

/// User id -> JSON [`UserRecord`].
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Lower-cased email -> user id: the uniqueness claim.
const USER_EMAILS: TableDefinition<&str, &str> = TableDefinition::new("user_emails");
/// Token id -> expiry (unix seconds).
const REVOKED_TOKENS: TableDefinition<&str, i64> = TableDefinition::new("revoked_tokens");

const FILE_NAME: &str = "shop.redb";

/// The redb-backed store. Cloning shares the database.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Opens (or creates) `DATA_DIR/shop.redb`, creating every table, so
    /// that later read transactions never meet a missing table.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::create(&path)
            .map_err(|e| StoreError::Internal(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(internal)?;
        txn.open_table(USERS).map_err(internal)?;
        txn.open_table(USER_EMAILS).map_err(internal)?;
        txn.open_table(REVOKED_TOKENS).map_err(internal)?;
        txn.commit().map_err(internal)?;
        Ok(EmbeddedStore { db: Arc::new(db) })
    }

    /// Runs blocking redb work off the async worker threads.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }
}

fn internal(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Internal(err.into().to_string())
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let record = UserRecord::from(user).to_bytes()?;
        let (id, email) = (user.id.to_string(), user.email.as_str().to_owned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut emails = txn.open_table(USER_EMAILS).map_err(internal)?;
                if emails.get(email.as_str()).map_err(internal)?.is_some() {
                    return Err(StoreError::EmailTaken);
                }
                emails.insert(email.as_str(), id.as_str()).map_err(internal)?;
                txn.open_table(USERS).map_err(internal)?.insert(id.as_str(), record.as_slice()).map_err(internal)?;
            }
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

    async fn update_user(&self, user: &User, previous_email: &Email) -> Result<(), StoreError> {
        let record = UserRecord::from(user).to_bytes()?;
        let (id, email) = (user.id.to_string(), user.email.as_str().to_owned());
        let previous = previous_email.as_str().to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(internal)?;
            {
                let mut users = txn.open_table(USERS).map_err(internal)?;
                if users.get(id.as_str()).map_err(internal)?.is_none() {
                    return Err(StoreError::NotFound);
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

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let jti = jti.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(internal)?;
            let revoked = txn.open_table(REVOKED_TOKENS).map_err(internal)?;
            Ok(revoked.get(jti.as_str()).map_err(internal)?.is_some())
        })
        .await
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| db.begin_read().map(|_| ()).map_err(internal)).await
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

/// The stored form of a [`User`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRecord {
    id: UserId,
    email: String,
    name: String,
    role: Role,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&User> for UserRecord {
    fn from(user: &User) -> Self {
        UserRecord {
            id: user.id,
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            role: user.role,
            password_hash: user.password_hash.clone(),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

impl UserRecord {
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Internal(e.to_string()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<User, StoreError> {
        let corrupt = |e: String| StoreError::Internal(format!("corrupt user record: {e}"));
        let record: UserRecord = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(User {
            id: record.id,
            email: Email::parse(&record.email).map_err(corrupt)?,
            name: UserName::parse(&record.name).map_err(corrupt)?,
            role: record.role,
            password_hash: record.password_hash,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

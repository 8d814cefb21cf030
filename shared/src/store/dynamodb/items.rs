//! Item <-> domain conversions and key builders for the one table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{Email, Role, User, UserId, UserName};
use crate::store::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// A primary key (`PK`, `SK`).
pub(super) struct Key {
    pk: String,
    sk: &'static str,
}

impl Key {
    pub fn user(id: UserId) -> Self {
        Key { pk: format!("USER#{id}"), sk: "PROFILE" }
    }

    pub fn email(email: &Email) -> Self {
        Key { pk: format!("EMAIL#{email}"), sk: "EMAIL" }
    }

    pub fn revoked_token(jti: &str) -> Self {
        Key { pk: format!("TOKEN#{jti}"), sk: "REVOKED" }
    }

    /// A key no item has: reading it proves the table answers.
    pub fn health() -> Self {
        Key { pk: "HEALTH".into(), sk: "HEALTH" }
    }

    pub fn into_item(self) -> Item {
        HashMap::from([
            ("PK".to_owned(), AttributeValue::S(self.pk)),
            ("SK".to_owned(), AttributeValue::S(self.sk.to_owned())),
        ])
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn timestamp(at: OffsetDateTime) -> AttributeValue {
    s(at.format(&Rfc3339).unwrap_or_default())
}

/// A string attribute; a missing or mistyped one means a corrupt item.
pub(super) fn attr_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Internal(format!("item attribute {name} is missing or not a string"))),
    }
}

fn attr_time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(&attr_s(item, name)?, &Rfc3339)
        .map_err(|e| StoreError::Internal(format!("item attribute {name}: {e}")))
}

pub(super) fn user_to_item(user: &User) -> Item {
    let mut item = Key::user(user.id).into_item();
    item.extend([
        ("entity".to_owned(), s("user")),
        ("id".to_owned(), s(user.id.to_string())),
        ("email".to_owned(), s(user.email.as_str())),
        ("name".to_owned(), s(user.name.as_str())),
        ("role".to_owned(), s(user.role.as_str())),
        ("passwordHash".to_owned(), s(user.password_hash.clone())),
        ("createdAt".to_owned(), timestamp(user.created_at)),
        ("updatedAt".to_owned(), timestamp(user.updated_at)),
    ]);
    item
}

pub(super) fn user_from_item(item: &Item) -> Result<User, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Internal(format!("user item {what}: {e}"));
    Ok(User {
        id: UserId::parse(&attr_s(item, "id")?).ok_or_else(|| corrupt("id", "not a uuid".into()))?,
        email: Email::parse(&attr_s(item, "email")?).map_err(|e| corrupt("email", e))?,
        name: UserName::parse(&attr_s(item, "name")?).map_err(|e| corrupt("name", e))?,
        role: Role::parse(&attr_s(item, "role")?).ok_or_else(|| corrupt("role", "unknown".into()))?,
        password_hash: attr_s(item, "passwordHash")?,
        created_at: attr_time(item, "createdAt")?,
        updated_at: attr_time(item, "updatedAt")?,
    })
}

pub(super) fn email_claim(email: &Email, owner: UserId) -> Item {
    let mut item = Key::email(email).into_item();
    item.extend([("entity".to_owned(), s("email")), ("userId".to_owned(), s(owner.to_string()))]);
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_survives_the_round_trip_through_an_item() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let user = User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").unwrap(),
            name: UserName::parse("Ada").unwrap(),
            role: Role::Admin,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created_at: now,
            updated_at: now,
        };
        let item = user_to_item(&user);
        assert_eq!(item["PK"], AttributeValue::S(format!("USER#{}", user.id)));
        assert_eq!(user_from_item(&item).unwrap(), user);
    }

    #[test]
    fn a_corrupt_item_is_an_error_not_a_panic() {
        let mut item = Key::user(UserId::new()).into_item();
        item.insert("id".into(), AttributeValue::N("7".into()));
        assert!(matches!(user_from_item(&item), Err(StoreError::Internal(_))));
    }
}

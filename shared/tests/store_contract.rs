//! The store port's contract, run against every adapter.

mod common;

use std::sync::Arc;

use shop::domain::{Email, Role, User, UserId, UserName, UserStatus};
use shop::store::{Store, StoreError, TokenStanding, UserStanding, UserStore};
use time::{Duration, OffsetDateTime};

fn user(email: &str) -> User {
    // Whole microseconds: what every adapter's timestamp format keeps.
    let now = OffsetDateTime::now_utc().replace_nanosecond(123_456_000).unwrap();
    User {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: UserName::parse("Ada Lovelace").unwrap(),
        role: Role::Customer,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        status: UserStatus::Active,
        session_version: 0,
        created_at: now,
        updated_at: now,
    }
}

async fn a_created_user_is_found_by_id_and_by_email(store: Arc<dyn Store>) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    assert_eq!(store.user_by_id(ada.id).await.unwrap().as_ref(), Some(&ada));
    assert_eq!(store.user_by_email(&ada.email).await.unwrap(), Some(ada));
}

async fn unknown_ids_and_emails_find_nothing(store: Arc<dyn Store>) {
    assert!(store.user_by_id(UserId::new()).await.unwrap().is_none());
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(store.user_by_email(&nobody).await.unwrap().is_none());
}

async fn a_taken_email_is_refused_whatever_its_case_and_nothing_is_written(store: Arc<dyn Store>) {
    store.create_user(&user("grace@example.com")).await.unwrap();
    let copycat = user("GRACE@Example.com");
    let result = store.create_user(&copycat).await;
    assert!(matches!(result, Err(StoreError::EmailTaken)), "{}: {result:?}", store.kind());
    assert!(store.user_by_id(copycat.id).await.unwrap().is_none());
}

async fn concurrent_registrations_of_one_email_have_exactly_one_winner(store: Arc<dyn Store>) {
    let attempts = (0..8).map(|_| {
        let store = Arc::clone(&store);
        async move { store.create_user(&user("race@example.com")).await }
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    let taken = results.iter().filter(|r| matches!(r, Err(StoreError::EmailTaken))).count();
    assert_eq!((winners, taken), (1, 7), "{}: {results:?}", store.kind());
}

async fn changing_the_email_releases_the_old_one(store: Arc<dyn Store>) {
    let previous = user("ada.old@example.com");
    store.create_user(&previous).await.unwrap();
    let mut ada = previous.clone();
    ada.email = Email::parse("ada.new@example.com").unwrap();
    ada.name = UserName::parse("Countess of Lovelace").unwrap();
    store.update_user(&ada, &previous).await.unwrap();
    assert!(store.user_by_email(&previous.email).await.unwrap().is_none());
    assert_eq!(store.user_by_email(&ada.email).await.unwrap().as_ref(), Some(&ada));
    assert_eq!(store.user_by_id(ada.id).await.unwrap(), Some(ada));
    store.create_user(&user("ada.old@example.com")).await.expect("the released email is free");
}

async fn changing_to_a_taken_email_changes_nothing(store: Arc<dyn Store>) {
    store.create_user(&user("taken@example.com")).await.unwrap();
    let original = user("mine@example.com");
    store.create_user(&original).await.unwrap();
    let mut changed = original.clone();
    changed.email = Email::parse("taken@example.com").unwrap();
    changed.name = UserName::parse("Someone Else").unwrap();
    let result = store.update_user(&changed, &original).await;
    assert!(matches!(result, Err(StoreError::EmailTaken)), "{}: {result:?}", store.kind());
    assert_eq!(store.user_by_id(original.id).await.unwrap().as_ref(), Some(&original));
    assert_eq!(store.user_by_email(&original.email).await.unwrap(), Some(original));
}

async fn updating_a_missing_user_is_not_found(store: Arc<dyn Store>) {
    let ghost = user("ghost@example.com");
    let result = store.update_user(&ghost, &ghost).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{}: {result:?}", store.kind());
}

async fn a_write_based_on_a_stale_read_never_undoes_a_password_or_email_change(store: Arc<dyn Store>) {
    let read = user("stale@example.com");
    store.create_user(&read).await.unwrap();
    // Someone changes the password after `read` was taken...
    let mut new_password = read.clone();
    new_password.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into();
    new_password.session_version = 1;
    store.update_user(&new_password, &read).await.unwrap();
    // ...so a rename based on `read` must not write the old hash back.
    let mut renamed = read.clone();
    renamed.name = UserName::parse("Stale Writer").unwrap();
    let result = store.update_user(&renamed, &read).await;
    assert!(matches!(result, Err(StoreError::UserChanged)), "{}: {result:?}", store.kind());
    assert_eq!(store.user_by_id(read.id).await.unwrap().as_ref(), Some(&new_password));

    // The same for an email change that came in between.
    let mut moved = new_password.clone();
    moved.email = Email::parse("moved@example.com").unwrap();
    store.update_user(&moved, &new_password).await.unwrap();
    let mut also_moved = new_password.clone();
    also_moved.email = Email::parse("elsewhere@example.com").unwrap();
    let result = store.update_user(&also_moved, &new_password).await;
    assert!(matches!(result, Err(StoreError::UserChanged)), "{}: {result:?}", store.kind());
    assert_eq!(store.user_by_id(read.id).await.unwrap().as_ref(), Some(&moved));
    assert!(store.user_by_email(&also_moved.email).await.unwrap().is_none(), "{}", store.kind());
}

async fn a_revoked_token_stays_revoked(store: Arc<dyn Store>) {
    let ada = user("revoked@example.com");
    store.create_user(&ada).await.unwrap();
    let jti = uuid::Uuid::new_v4().to_string();
    let live = TokenStanding { revoked: false, user: Some(UserStanding::from(&ada)) };
    assert_eq!(store.token_standing(ada.id, &jti).await.unwrap(), live);
    store.revoke_token(&jti, OffsetDateTime::now_utc() + Duration::hours(1)).await.unwrap();
    assert!(store.token_standing(ada.id, &jti).await.unwrap().revoked);
    assert_eq!(store.token_standing(ada.id, "another").await.unwrap(), live);
}

async fn a_token_stands_on_its_users_current_session_version(store: Arc<dyn Store>) {
    let read = user("sessions@example.com");
    store.create_user(&read).await.unwrap();
    let mut ada = read.clone();
    ada.session_version = 7;
    store.update_user(&ada, &read).await.unwrap();
    let standing = store.token_standing(ada.id, "some-jti").await.unwrap();
    assert_eq!(standing, TokenStanding { revoked: false, user: Some(UserStanding::from(&ada)) });
    assert_eq!(store.user_by_id(ada.id).await.unwrap().unwrap().session_version, 7);
    let nobody = store.token_standing(UserId::new(), "some-jti").await.unwrap();
    assert_eq!(nobody.user, None, "{}", store.kind());
}

async fn every_adapter_answers_a_ping(store: Arc<dyn Store>) {
    store.ping().await.unwrap_or_else(|e| panic!("{}: {e}", store.kind()));
}

#[tokio::test]
async fn the_embedded_store_keeps_users_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ada = user("persist@example.com");
    {
        let store = shop::store::embedded::EmbeddedStore::open(dir.path()).unwrap();
        store.create_user(&ada).await.unwrap();
    }
    let reopened = shop::store::embedded::EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(reopened.user_by_email(&ada.email).await.unwrap(), Some(ada));
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_unavailable_not_internal() {
    let config = shop::Config::from_lookup(|name| match name {
        "STORE" => Some("dynamodb".into()),
        // A port nothing listens on: connection refused at once.
        "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://127.0.0.1:9".into()),
        _ => None,
    })
    .unwrap();
    let store = shop::store::dynamodb::DynamoStore::connect(&config).await;
    let result = store.ping().await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
}

store_contract!(
    a_created_user_is_found_by_id_and_by_email,
    unknown_ids_and_emails_find_nothing,
    a_taken_email_is_refused_whatever_its_case_and_nothing_is_written,
    concurrent_registrations_of_one_email_have_exactly_one_winner,
    changing_the_email_releases_the_old_one,
    changing_to_a_taken_email_changes_nothing,
    updating_a_missing_user_is_not_found,
    a_write_based_on_a_stale_read_never_undoes_a_password_or_email_change,
    a_revoked_token_stays_revoked,
    a_token_stands_on_its_users_current_session_version,
    every_adapter_answers_a_ping,
);

//! The store port's contract for user management (roles, statuses, the
//! last active admin, the admin listing), run against every adapter.

mod common;

use std::sync::Arc;

use shop::domain::{Email, Role, User, UserId, UserName, UserStatus};
use shop::store::{Store, StoreError, UserQuery};
use time::OffsetDateTime;

fn user(email: &str, name: &str, role: Role) -> User {
    // Whole microseconds: what every adapter's timestamp format keeps.
    let now = OffsetDateTime::now_utc().replace_nanosecond(123_456_000).unwrap();
    User {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: UserName::parse(name).unwrap(),
        role,
        status: UserStatus::Active,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        session_version: 0,
        created_at: now,
        updated_at: now,
    }
}

async fn stored(store: &Arc<dyn Store>, email: &str, role: Role) -> User {
    let user = user(email, "Stored User", role);
    store.create_user(&user).await.unwrap();
    user
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

async fn a_role_change_shows_in_the_users_standing_at_once(store: Arc<dyn Store>) {
    stored(&store, "boss@example.com", Role::Admin).await;
    let ada = stored(&store, "ada@example.com", Role::Customer).await;
    let promoted = store.change_user_access(&ada, Role::Admin, UserStatus::Active, now()).await.unwrap();
    assert_eq!((promoted.role, promoted.session_version), (Role::Admin, 0), "a role change keeps sessions");
    let standing = store.token_standing(ada.id, "jti").await.unwrap().user.unwrap();
    assert_eq!(standing.role, Role::Admin, "{}", store.kind());
    assert_eq!(store.user_by_id(ada.id).await.unwrap(), Some(promoted));
}

async fn disabling_ends_every_session_and_enabling_starts_none_again(store: Arc<dyn Store>) {
    let ada = stored(&store, "ada@example.com", Role::Customer).await;
    let disabled = store.change_user_access(&ada, Role::Customer, UserStatus::Disabled, now()).await.unwrap();
    assert_eq!((disabled.status, disabled.session_version), (UserStatus::Disabled, 1));
    let standing = store.token_standing(ada.id, "jti").await.unwrap().user.unwrap();
    assert_eq!((standing.status, standing.session_version), (UserStatus::Disabled, 1), "{}", store.kind());
    let enabled = store.change_user_access(&disabled, Role::Customer, UserStatus::Active, now()).await.unwrap();
    assert_eq!(enabled.session_version, 1, "tokens from before the disabling stay dead");
}

async fn the_last_active_admin_can_be_neither_demoted_nor_disabled(store: Arc<dyn Store>) {
    let first = stored(&store, "first@example.com", Role::Admin).await;
    for (role, status) in [(Role::Customer, UserStatus::Active), (Role::Admin, UserStatus::Disabled)] {
        let result = store.change_user_access(&first, role, status, now()).await;
        assert!(matches!(result, Err(StoreError::LastAdmin)), "{}: {result:?}", store.kind());
    }
    assert_eq!(store.user_by_id(first.id).await.unwrap().as_ref(), Some(&first), "nothing was written");
    let second = stored(&store, "second@example.com", Role::Customer).await;
    let second = store.change_user_access(&second, Role::Admin, UserStatus::Active, now()).await.unwrap();
    store.change_user_access(&first, Role::Customer, UserStatus::Active, now()).await.unwrap();
    let result = store.change_user_access(&second, Role::Admin, UserStatus::Disabled, now()).await;
    assert!(matches!(result, Err(StoreError::LastAdmin)), "{}: {result:?}", store.kind());
}

async fn two_admins_demoting_each_other_at_once_leave_one(store: Arc<dyn Store>) {
    let one = stored(&store, "one@example.com", Role::Admin).await;
    let two = stored(&store, "two@example.com", Role::Admin).await;
    let (a, b) = tokio::join!(
        store.change_user_access(&one, Role::Customer, UserStatus::Active, now()),
        store.change_user_access(&two, Role::Customer, UserStatus::Active, now()),
    );
    let refused = [&a, &b].iter().filter(|r| matches!(r, Err(StoreError::LastAdmin))).count();
    assert_eq!((a.is_ok() as u8 + b.is_ok() as u8, refused), (1, 1), "{}: {a:?} {b:?}", store.kind());
}

async fn an_access_change_on_a_stale_read_or_a_missing_user_is_refused(store: Arc<dyn Store>) {
    stored(&store, "boss@example.com", Role::Admin).await;
    let read = stored(&store, "ada@example.com", Role::Customer).await;
    store.change_user_access(&read, Role::Admin, UserStatus::Active, now()).await.unwrap();
    let result = store.change_user_access(&read, Role::Customer, UserStatus::Disabled, now()).await;
    assert!(matches!(result, Err(StoreError::UserChanged)), "{}: {result:?}", store.kind());
    let ghost = user("ghost@example.com", "Ghost", Role::Customer);
    let result = store.change_user_access(&ghost, Role::Admin, UserStatus::Active, now()).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{}: {result:?}", store.kind());
}

async fn a_profile_write_on_a_read_from_before_a_role_change_never_undoes_it(store: Arc<dyn Store>) {
    stored(&store, "boss@example.com", Role::Admin).await;
    let read = stored(&store, "ada@example.com", Role::Customer).await;
    store.change_user_access(&read, Role::Admin, UserStatus::Active, now()).await.unwrap();
    let mut renamed = read.clone();
    renamed.name = UserName::parse("Ada Renamed").unwrap();
    let result = store.update_user(&renamed, &read).await;
    assert!(matches!(result, Err(StoreError::UserChanged)), "{}: {result:?}", store.kind());
    assert_eq!(store.user_by_id(read.id).await.unwrap().unwrap().role, Role::Admin);
}

async fn users_are_listed_newest_first_by_prefix_and_role(store: Arc<dyn Store>) {
    let mut created = Vec::new();
    for (email, name, role) in [
        ("ada@example.com", "Ada Lovelace", Role::Admin),
        ("grace@example.com", "Grace Hopper", Role::Customer),
        ("alan@example.com", "Alan Turing", Role::Customer),
        ("barbara@example.com", "Ada Byron", Role::Customer),
    ] {
        let user = user(email, name, role);
        store.create_user(&user).await.unwrap();
        created.push(user);
    }
    let ids = |users: &[User]| users.iter().map(|user| user.id).collect::<Vec<_>>();
    let list =
        |prefix: Option<&str>, role, limit, after| UserQuery { prefix: prefix.map(str::to_owned), role, limit, after };
    let all = store.list_users(&list(None, None, 10, None)).await.unwrap();
    let newest_first: Vec<UserId> = created.iter().rev().map(|user| user.id).collect();
    assert_eq!(ids(&all.items), newest_first, "{}", store.kind());
    assert_eq!(all.next, None);
    // "ada" starts Ada's email and Barbara's name ("Ada Byron"), any case.
    let ada = store.list_users(&list(Some("ada"), None, 10, None)).await.unwrap();
    assert_eq!(ids(&ada.items), vec![created[3].id, created[0].id], "{}", store.kind());
    let customers = store.list_users(&list(Some("a"), Some(Role::Customer), 10, None)).await.unwrap();
    assert_eq!(ids(&customers.items), vec![created[3].id, created[2].id], "{}", store.kind());
    let first = store.list_users(&list(None, Some(Role::Customer), 2, None)).await.unwrap();
    assert_eq!(ids(&first.items), vec![created[3].id, created[2].id]);
    let second = store.list_users(&list(None, Some(Role::Customer), 2, first.next)).await.unwrap();
    assert_eq!((ids(&second.items), second.next), (vec![created[1].id], None), "{}", store.kind());
}

store_contract!(
    a_role_change_shows_in_the_users_standing_at_once,
    disabling_ends_every_session_and_enabling_starts_none_again,
    the_last_active_admin_can_be_neither_demoted_nor_disabled,
    two_admins_demoting_each_other_at_once_leave_one,
    an_access_change_on_a_stale_read_or_a_missing_user_is_refused,
    a_profile_write_on_a_read_from_before_a_role_change_never_undoes_it,
    users_are_listed_newest_first_by_prefix_and_role,
);

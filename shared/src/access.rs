//! Who may call each route, declared once.
//!
//! Invariant: **no handler runs for a caller its route's [`Access`] does
//! not admit.** Every route of [`crate::routes::ROUTES`] names its access;
//! [`crate::App::handle`] authenticates and authorizes against it before
//! the handler is called and hands the handler the [`Principal`] it needs.
//! Handlers never check tokens or roles themselves, so the policy is
//! audited by reading the route table, and a new route cannot forget it
//! (it does not compile without an access).
//!
//! One rule needs the object it protects: `owner-or-admin` admits any
//! signed-in user at the door, and the handler, once it has loaded the
//! object, asks [`Principal::owns_or_administers`] whether the caller may
//! see it. What an owner may *do* with their object (an owner may cancel an
//! order, never ship it) is the domain's workflow, not the access policy.

use crate::auth::Claims;
use crate::domain::{Role, UserId};

/// Who may call a route. `openapi.yaml` publishes it per operation as
/// `x-access`, with the same spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone; a token, if sent, is not even read.
    Public,
    /// Any signed-in user: 401 without a valid token.
    User,
    /// Admins only: 401 without a valid token, 403 for a customer.
    Admin,
    /// The object's owner or an admin. At the door like [`Access::User`];
    /// the handler then applies [`Principal::owns_or_administers`] to the
    /// object it loaded (another user's order is a 404: its existence is
    /// not told).
    OwnerOrAdmin,
}

impl Access {
    /// The name used in `openapi.yaml` (`x-access`) and the manual's route tables (`docs/`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::User => "user",
            Access::Admin => "admin",
            Access::OwnerOrAdmin => "owner-or-admin",
        }
    }

    /// Whether the pipeline must authenticate the caller.
    pub const fn needs_token(self) -> bool {
        !matches!(self, Access::Public)
    }

    /// Whether a signed-in caller of `role` passes the door. An
    /// `owner-or-admin` route lets every role in; ownership is checked on
    /// the object.
    pub fn admits(self, role: Role) -> bool {
        match self {
            Access::Public | Access::User | Access::OwnerOrAdmin => true,
            Access::Admin => role == Role::Admin,
        }
    }
}

/// The caller of a protected route, from a valid, unrevoked token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    pub claims: Claims,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The `owner-or-admin` rule for one object owned by `owner`: the one
    /// place where object-level access is decided.
    pub fn owns_or_administers(&self, owner: UserId) -> bool {
        self.user_id == owner || self.is_admin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_routes_turn_a_customer_away_at_the_door() {
        for access in [Access::Public, Access::User, Access::OwnerOrAdmin] {
            assert!(access.admits(Role::Customer), "{access:?}");
            assert!(access.admits(Role::Admin), "{access:?}");
        }
        assert!(!Access::Admin.admits(Role::Customer));
        assert!(Access::Admin.admits(Role::Admin));
    }

    fn principal(role: Role) -> Principal {
        let user_id = UserId::new();
        let claims = Claims { sub: user_id.to_string(), role, exp: 0, iat: 0, jti: "jti".into(), ver: 0 };
        Principal { user_id, role, claims }
    }

    #[test]
    fn an_object_is_open_to_its_owner_and_to_admins_only() {
        let customer = principal(Role::Customer);
        assert!(customer.owns_or_administers(customer.user_id));
        assert!(!customer.owns_or_administers(UserId::new()));
        assert!(principal(Role::Admin).owns_or_administers(customer.user_id));
    }

    #[test]
    fn every_access_but_public_needs_a_token() {
        assert!(!Access::Public.needs_token());
        for access in [Access::User, Access::Admin, Access::OwnerOrAdmin] {
            assert!(access.needs_token(), "{access:?}");
        }
    }
}

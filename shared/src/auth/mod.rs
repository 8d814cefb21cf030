//! Authentication building blocks: argon2id password hashing, HS256 tokens
//! and the signing secret.

mod jwt_hmac;
mod password;
mod secret;
mod token;

pub use password::{HashMemory, PasswordHasher};
pub use secret::{SecretError, resolve_jwt_secret};
pub use token::{Claims, IssuedToken, TokenError, TokenService};

//! Domain types and rules. Nothing here does I/O or knows about HTTP, AWS
//! or Redis: wire types convert into these, and a value of one of these
//! types has passed its validation.

pub mod user;
mod validation;

pub use user::{Email, Password, Role, User, UserId, UserName};
pub use validation::FieldErrors;

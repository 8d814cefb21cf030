//! Domain types and rules. Nothing here does I/O or knows about HTTP, AWS
//! or Redis: wire types convert into these, and a value of one of these
//! types has passed its validation.

pub mod cart;
pub mod catalog;
mod id;
pub mod money;
pub mod order;
pub mod payment;
pub mod search;
pub mod user;
mod validation;

pub use cart::{Cart, CartLine, PricedCart, PricedLine};
pub use catalog::{
    Category, CategoryName, Description, ListPosition, Product, ProductId, ProductName, ProductPage, ProductQuery,
    SearchTerms, StockChange,
};
pub use money::Money;
pub use order::{Order, OrderId, OrderItem, OrderLines, OrderSource, OrderStatus};
pub use payment::{Currency, Payment, PaymentStatus};
pub use user::{Email, Password, Role, User, UserId, UserName, UserStatus};
pub use validation::FieldErrors;

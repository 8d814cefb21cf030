//! Black-box tests: each test starts the real `shop-local` binary on a free
//! loopback port with a fresh, isolated store and talks HTTP to it.
//!
//! `SHOP_TEST_BACKEND=dynamodb` runs the same tests against DynamoDB Local
//! (`SHOP_TEST_DYNAMODB_URL`, a new table per server) and Redis
//! (`SHOP_TEST_REDIS_URL`); the default is the embedded store with the
//! in-process cache.

mod auth;
mod carts;
mod catalog;
mod compression;
mod events;
mod gateway;
mod helpers;
mod metrics;
mod orders;
mod payments;
mod seed;
mod users;
mod webhooks;

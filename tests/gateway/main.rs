//! Gateway integration tests: real identity-svc, collector-svc and gateway on loopback ports
//! (SQLite, or PostgreSQL when `ASHGATE_TEST_DATABASE_URL` is set), driven by a real HTTP client
//! and, in `browser`, by Debian's chromium through chromedriver.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod api_keys;
mod auth;
mod browser;
mod csrf;
mod ldap;
mod oauth2;
mod password_reset;
mod phoenix_clients;
mod quickstart;
mod rest;
mod spans;
mod support;

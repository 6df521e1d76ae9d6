//! The security regression suite (issue 8): how an attacker and an unlucky network treat
//! ashgate, kept as ordinary tests so every finding stays fixed. Real services on loopback
//! ports (SQLite, or PostgreSQL when `ASHGATE_TEST_DATABASE_URL` is set), real clients, raw TCP
//! where a well-behaved client cannot misbehave enough.
//!
//! What lives elsewhere and is not repeated here (see each test's doc): identity-level
//! forgeries (`tests/identity/api_keys.rs`), refresh reuse (`tests/identity/sessions.rs`),
//! CSRF (`tests/gateway/csrf.rs`), cookie flags (`tests/gateway/auth.rs`), open redirects
//! (`tests/gateway/oauth2/failures.rs`), reset-link reuse and expiry
//! (`tests/gateway/password_reset.rs`), gzip bombs on the collector (`tests/collector/http.rs`),
//! kills and restarts under load (`tests/fleet`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod abuse;
mod accounts;
mod auth_off;
mod bad_keys;
mod basic_auth_off;
mod connections;
mod enumeration;
mod faults;
mod forwarded;
mod grpc_limits;
mod guessing;
mod internal_credentials;
mod lockout;
mod login_csrf;
mod oauth2_linking;
mod projects;
mod rebinding;
mod refresh;
mod reset_links;
mod reset_timing;
mod rotation;
mod sessions;
mod support;
mod tokens;

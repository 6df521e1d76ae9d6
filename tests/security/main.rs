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

mod abuse;
mod connections;
mod enumeration;
mod faults;
mod lockout;
mod projects;
mod sessions;
mod support;
mod tokens;

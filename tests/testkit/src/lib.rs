//! Real components for the integration tests, each started on free loopback ports.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "fixtures fail the test that uses them by panicking"
)]

/// collector-svc fixtures.
pub mod collector;

/// identity-svc fixtures.
pub mod identity;

/// gateway fixtures (identity-svc + collector-svc + gateway).
pub mod gateway;

/// The multi-replica fleet as OS processes (private PostgreSQL and Redis).
pub mod fleet;

/// A real OpenID Provider (npm `oidc-provider`) for OAuth2 sign-in tests.
pub mod oidc;

/// A real directory (OpenLDAP `slapd`) for LDAP sign-in tests.
pub mod ldap;
/// The OAuth2 sign-in flow through a gateway, against [`oidc`].
pub mod oauth2;

/// Parsed `Set-Cookie` headers.
pub mod cookies;

/// A real SMTP server (Python `aiosmtpd`) for password-recovery tests.
pub mod smtp;

/// Fault injection: a TCP proxy that takes a dependency down or makes it hang.
pub mod faults;

/// Phoenix's Python and TypeScript clients, run as child processes.
pub mod phoenix_clients;

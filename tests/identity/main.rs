//! identity-svc over real gRPC: the permission matrix, sessions, API keys, seeding, limits and
//! revocation across replicas, LDAP sign-in against a real slapd. Runs on SQLite, and on PostgreSQL when
//! `ASHGATE_TEST_DATABASE_URL` is set (a fresh database per test); uses Redis when
//! `ASHGATE_TEST_REDIS_URL` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod api_keys;
mod cli;
mod ldap;
mod limits;
mod matrix;
mod metrics;
mod revocation;
mod rotation;
mod seeding;
mod sessions;
mod tls;

use ashgate_testkit::identity::IdentityFixture;
use tonic::Code;

/// The gRPC code (and message) of a call's outcome.
pub fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> (Code, String) {
    match result {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

/// A unique name for a test user.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Starts a fixture; shared by the modules.
pub async fn fixture() -> IdentityFixture {
    IdentityFixture::start().await
}

//! Brute-force lockout shared by two identity replicas through Redis: failures counted on one
//! replica lock the (email, address) pair on the other, and enough failures from many
//! addresses put the email under attack everywhere (one guess per further address), without
//! locking its owner out. One replica alone: `tests/identity/limits.rs`.
//!
//! Uses the machine's Redis (`ASHGATE_TEST_REDIS_URL`, else 127.0.0.1:6379) under a namespace
//! of this test's own, so it shares no key with any other test.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{GATEWAY_TOKEN, INTERNAL_TOKEN, IdentityFixture, TEST_REDIS_ENV};
use tonic::{Code, Request};

const LOCKED: &str = "Too many failed login attempts. Please try again later.";

fn redis_url() -> String {
    std::env::var(TEST_REDIS_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// A sign-in forwarded by the gateway on behalf of `addr` (internal callers may name it).
fn login_from(email: &str, addr: &str, password: &str) -> Request<pb::LoginRequest> {
    let mut request = Request::new(pb::LoginRequest { email: email.into(), password: password.into() });
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().unwrap());
    request.metadata_mut().insert("x-ashgate-gateway-token", GATEWAY_TOKEN.parse().unwrap());
    request.metadata_mut().insert("x-ashgate-client-addr", addr.parse().unwrap());
    request
}

async fn attempt(fx: &IdentityFixture, email: &str, addr: &str, password: &str) -> (Code, String) {
    match fx.auth().login(login_from(email, addr, password)).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

#[tokio::test]
async fn lockout_holds_across_two_replicas_sharing_redis() {
    let redis = redis_url();
    let configure = |env: ashgate_runtime::env::Env| {
        env.with("ASHGATE_REDIS_URL", redis.clone())
            .with("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", "3")
    };
    let first = IdentityFixture::start_with(configure).await;
    let second = first.replica(configure).await;
    first.user_with_role("target", pb::Role::Member).await;
    let email = "target@example.com";

    // Failures alternate between the replicas; the third locks the pair on both.
    for (i, replica) in [&first, &second, &first].into_iter().enumerate() {
        let got = attempt(replica, email, "203.0.113.9", "guess").await;
        assert_eq!(got, (Code::Unauthenticated, "Invalid email and/or password".into()), "attempt {i}");
    }
    for replica in [&first, &second] {
        let got = attempt(replica, email, "203.0.113.9", "user-password-1").await;
        assert_eq!(
            got,
            (Code::ResourceExhausted, LOCKED.into()),
            "locked on every replica, right password or not"
        );
    }
    // The owner, elsewhere, is not locked out by a stranger.
    assert_eq!(attempt(&second, email, "198.51.100.20", "user-password-1").await.0, Code::Ok);

    // Ten times the limit from many addresses, spread over both replicas, puts the email under
    // attack on both: a fresh address then gets a single guess before its lock...
    for i in 0..30 {
        let replica = if i % 2 == 0 { &first } else { &second };
        let addr = format!("192.0.2.{}", i / 3 + 1);
        let (code, _) = attempt(replica, email, &addr, "guess").await;
        assert!(matches!(code, Code::Unauthenticated | Code::ResourceExhausted), "attempt {i}: {code:?}");
    }
    assert_eq!(attempt(&first, email, "192.0.2.99", "guess").await.0, Code::Unauthenticated);
    let got = attempt(&second, email, "192.0.2.99", "user-password-1").await;
    assert_eq!(got, (Code::ResourceExhausted, LOCKED.into()), "one guess per address, on every replica");
    // ...while the owner, from an address with no failures, still signs in on both.
    for replica in [&first, &second] {
        assert_eq!(attempt(replica, email, "198.51.100.21", "user-password-1").await.0, Code::Ok);
    }
}

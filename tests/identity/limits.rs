//! Brute-force lockout per (email, address) and the per-address rate limit.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{INTERNAL_TOKEN, IdentityFixture};
use tonic::{Code, Request};

use crate::outcome;

fn login_from(addr: &str, password: &str) -> Request<pb::LoginRequest> {
    let mut request =
        Request::new(pb::LoginRequest { email: "admin@localhost".into(), password: password.into() });
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().unwrap());
    request.metadata_mut().insert("x-ashgate-client-addr", addr.parse().unwrap());
    request
}

#[tokio::test]
async fn a_stranger_cannot_lock_out_the_admin() {
    let fx = IdentityFixture::start().await;
    for _ in 0..5 {
        let got = outcome(fx.auth().login(login_from("203.0.113.7", "guess")).await);
        assert_eq!(got, (Code::Unauthenticated, "Invalid email and/or password".into()));
    }
    // Locked for the attacker, even with the right password...
    let got = outcome(fx.auth().login(login_from("203.0.113.7", "admin")).await);
    assert_eq!(
        got,
        (Code::ResourceExhausted, "Too many failed login attempts. Please try again later.".into())
    );
    // ...but the admin, signing in from elsewhere, is not locked out (Phoenix would be).
    assert_eq!(outcome(fx.auth().login(login_from("198.51.100.1", "admin")).await).0, Code::Ok);
}

#[tokio::test]
async fn many_addresses_put_the_email_under_attack() {
    let fx =
        IdentityFixture::start_with(|env| env.with("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", "2"))
            .await;
    // 2 per address, 20 per email in all.
    for i in 0..20 {
        let got = outcome(fx.auth().login(login_from(&format!("203.0.113.{}", i / 2), "guess")).await);
        assert_eq!(got.0, Code::Unauthenticated, "attempt {i}");
    }
    // A further address gets one guess before its lock...
    assert_eq!(outcome(fx.auth().login(login_from("203.0.113.200", "guess")).await).0, Code::Unauthenticated);
    let got = outcome(fx.auth().login(login_from("203.0.113.200", "admin")).await);
    assert_eq!(got.0, Code::ResourceExhausted);
    // ...and the owner, from an address without failures, is let in.
    assert_eq!(outcome(fx.auth().login(login_from("198.51.100.1", "admin")).await).0, Code::Ok);
}

#[tokio::test]
async fn client_address_is_only_trusted_from_internal_callers() {
    let fx = IdentityFixture::start().await;
    for i in 0..5 {
        // An outsider claiming a different address each time is still counted by its peer address.
        let mut request =
            Request::new(pb::LoginRequest { email: "admin@localhost".into(), password: "guess".into() });
        request.metadata_mut().insert("x-ashgate-client-addr", format!("192.0.2.{i}").parse().unwrap());
        assert_eq!(outcome(fx.auth().login(request).await).0, Code::Unauthenticated);
    }
    let got = outcome(
        fx.auth().login(pb::LoginRequest { email: "admin@localhost".into(), password: "admin".into() }).await,
    );
    assert_eq!(got.0, Code::ResourceExhausted);
}

#[tokio::test]
async fn protection_can_be_disabled() {
    let fx =
        IdentityFixture::start_with(|env| env.with("PHOENIX_DISABLE_BRUTE_FORCE_LOGIN_PROTECTION", "true"))
            .await;
    for _ in 0..8 {
        assert_eq!(
            outcome(fx.auth().login(login_from("203.0.113.9", "guess")).await).0,
            Code::Unauthenticated
        );
    }
    assert_eq!(outcome(fx.auth().login(login_from("203.0.113.9", "admin")).await).0, Code::Ok);
}

#[tokio::test]
async fn per_address_rate_limit_on_sign_in() {
    let fx = IdentityFixture::start_with(|env| env.with("PHOENIX_DISABLE_RATE_LIMIT", "false")).await;
    // Phoenix: a bucket of 12 per address, refilled at 0.2/s.
    for i in 0..12 {
        assert_eq!(
            outcome(fx.auth().login(login_from("203.0.113.50", "admin")).await).0,
            Code::Ok,
            "request {i}"
        );
    }
    let got = outcome(fx.auth().login(login_from("203.0.113.50", "admin")).await);
    assert_eq!(got, (Code::ResourceExhausted, "Too Many Requests".into()));
    assert_eq!(outcome(fx.auth().login(login_from("203.0.113.51", "admin")).await).0, Code::Ok);
}

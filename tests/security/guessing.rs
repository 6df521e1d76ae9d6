//! Password guessing, as an attacker with many connections and many addresses tries it:
//! - concurrent guesses used to be checked all at once (the lock was read before argon2 and the
//!   failure written after), so 40 guesses sent together were 40 guesses; now an attempt is
//!   reserved before the password is checked;
//! - failures of one email from many addresses used to lock the email for everyone, the owner
//!   included; now an address with no failures is always let through to the password check;
//! - the current password asked by a password change could be guessed without limit through a
//!   stolen session; now those failures are counted per user like sign-in failures;
//! - a password reset did not clear the lockout when the records lived in Redis.
//!
//! Runs on the machine's Redis when `ASHGATE_TEST_REDIS_URL` is set, else in process.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{INTERNAL_TOKEN, IdentityFixture, bearer};
use futures::future::join_all;
use tonic::{Code, Request};

const LOCKED: &str = "Too many failed login attempts. Please try again later.";
const TOO_MANY_PASSWORD_FAILURES: &str = "Too many failed password attempts. Please try again later.";
const EMAIL: &str = "target@example.com";
const PASSWORD: &str = "user-password-1";

/// A sign-in forwarded by the gateway on behalf of `addr`.
fn login_from(addr: &str, password: &str) -> Request<pb::LoginRequest> {
    let mut request = Request::new(pb::LoginRequest { email: EMAIL.into(), password: password.into() });
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().unwrap());
    request.metadata_mut().insert("x-ashgate-client-addr", addr.parse().unwrap());
    request
}

async fn attempt(fx: &IdentityFixture, addr: &str, password: &str) -> (Code, String) {
    match fx.auth().login(login_from(addr, password)).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_counted_before_the_password_is_checked() {
    let fx = IdentityFixture::start().await;
    fx.user_with_role("target", pb::Role::Member).await;
    // Eleven wrong passwords and the right one, all at once, from one address.
    let guesses = (0..12).map(|i| {
        let fx = &fx;
        async move { attempt(fx, "203.0.113.7", if i == 11 { PASSWORD } else { "guess" }).await }
    });
    let answers = join_all(guesses).await;
    let checked = answers.iter().filter(|(code, _)| *code != Code::ResourceExhausted).count();
    assert!(checked <= 5, "at most 5 passwords are checked, not {checked}: {answers:?}");
    for (code, message) in &answers {
        assert!(
            matches!(
                (code, message.as_str()),
                (Code::Unauthenticated, "Invalid email and/or password") | (Code::Ok, _)
            ) || (*code, message.as_str()) == (Code::ResourceExhausted, LOCKED),
            "{code:?} {message}"
        );
    }
    // Forty more from another address: still at most five checked.
    let guesses = (0..40).map(|_| attempt(&fx, "203.0.113.8", "guess"));
    let answers = join_all(guesses).await;
    let checked = answers.iter().filter(|(code, _)| *code == Code::Unauthenticated).count();
    assert!(checked <= 5, "at most 5 of 40 concurrent guesses are checked, not {checked}");
}

#[tokio::test]
async fn failures_from_many_addresses_do_not_lock_the_owner_out() {
    let fx = IdentityFixture::start().await;
    fx.user_with_role("target", pb::Role::Member).await;
    // Five wrong passwords from each of ten addresses: 50 failures, the email-wide threshold.
    for a in 0..10 {
        let addr = format!("192.0.2.{}", a + 1);
        for i in 0..5 {
            let got = attempt(&fx, &addr, "guess").await;
            assert_eq!(got, (Code::Unauthenticated, "Invalid email and/or password".into()), "{addr} #{i}");
        }
        assert_eq!(attempt(&fx, &addr, PASSWORD).await, (Code::ResourceExhausted, LOCKED.into()), "{addr}");
    }
    // The email is under attack now: every further address gets one guess, not five.
    for a in 10..14 {
        let addr = format!("192.0.2.{}", a + 1);
        assert_eq!(attempt(&fx, &addr, "guess").await.0, Code::Unauthenticated, "{addr}");
        assert_eq!(attempt(&fx, &addr, PASSWORD).await, (Code::ResourceExhausted, LOCKED.into()), "{addr}");
    }
    // The owner, from an address that has not failed, signs in, again and again.
    for _ in 0..3 {
        assert_eq!(attempt(&fx, "198.51.100.20", PASSWORD).await.0, Code::Ok);
    }
    // Another email is not affected by the attack on this one.
    fx.user_with_role("bystander", pb::Role::Member).await;
    let login = pb::LoginRequest { email: "bystander@example.com".into(), password: PASSWORD.into() };
    let mut request = Request::new(login);
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().unwrap());
    request.metadata_mut().insert("x-ashgate-client-addr", "192.0.2.1".parse().unwrap());
    assert!(fx.auth().login(request).await.is_ok());
}

#[tokio::test]
async fn a_password_reset_clears_the_lockout() {
    let fx = IdentityFixture::start().await;
    fx.user_with_role("target", pb::Role::Member).await;
    for _ in 0..5 {
        attempt(&fx, "203.0.113.9", "guess").await;
    }
    assert_eq!(attempt(&fx, "203.0.113.9", PASSWORD).await, (Code::ResourceExhausted, LOCKED.into()));
    let secret = ashgate_identity::secret::Secret::new("a-brand-new-password");
    fx.identity.set_password_offline(EMAIL, &secret, false).await.unwrap();
    assert_eq!(attempt(&fx, "203.0.113.9", "a-brand-new-password").await.0, Code::Ok);
}

#[tokio::test]
async fn the_current_password_cannot_be_guessed_through_a_session() {
    let fx = IdentityFixture::start().await;
    let (user_id, access) = fx.user_with_role("target", pb::Role::Member).await;
    let change = |current: &str| {
        bearer(
            pb::UpdatePasswordRequest {
                user_id,
                new_password: "stolen-session-choice".into(),
                current_password: current.into(),
            },
            &access,
        )
    };
    for i in 0..5 {
        let status = fx.users().update_password(change(&format!("guess-{i}"))).await.unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, "Current password is incorrect")
        );
    }
    for current in ["guess-5", PASSWORD] {
        let status = fx.users().update_password(change(current)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::ResourceExhausted, TOO_MANY_PASSWORD_FAILURES));
    }
    // The lock is per user: a sign-in still works, and another replica sees the same count.
    let pair = fx.login(EMAIL, PASSWORD).await;
    let other = fx.replica(|env| env).await;
    let retry = bearer(
        pb::UpdatePasswordRequest {
            user_id,
            new_password: "stolen-session-choice".into(),
            current_password: PASSWORD.into(),
        },
        &pair.access_token,
    );
    let result = other.users().update_password(retry).await;
    if std::env::var(ashgate_testkit::identity::TEST_REDIS_ENV).is_ok_and(|v| !v.is_empty()) {
        assert_eq!(result.unwrap_err().code(), Code::ResourceExhausted, "shared over Redis");
    } else {
        // Without Redis each process keeps its own count (one process is the embedded default).
        assert!(result.is_ok(), "{result:?}");
    }
}

/// An IPv6 client owns a whole /64: counting per /128 let one attacker be "many addresses"
/// (a fresh address per guess escaped both the lock and the rate limit).
#[tokio::test]
async fn an_ipv6_client_is_one_address_per_64() {
    let fx = IdentityFixture::start_with(|env| env.with("PHOENIX_DISABLE_RATE_LIMIT", "false")).await;
    fx.user_with_role("target", pb::Role::Member).await;
    for i in 1..=5 {
        let got = attempt(&fx, &format!("2001:db8:1:2::{i:x}"), "guess").await;
        assert_eq!(got, (Code::Unauthenticated, "Invalid email and/or password".into()), "guess {i}");
    }
    let got = attempt(&fx, "2001:db8:1:2:ffff:ffff:ffff:ffff", PASSWORD).await;
    assert_eq!(got, (Code::ResourceExhausted, LOCKED.into()), "the same /64 is locked");
    assert_eq!(attempt(&fx, "2001:db8:1:3::1", PASSWORD).await.0, Code::Ok, "another /64 is not");
    // The per-address bucket (12) is shared by the /64 too: 6 more from fresh /128s, then refused.
    for i in 0..5 {
        let got = attempt(&fx, &format!("2001:db8:1:3::{:x}", 0x100 + i), PASSWORD).await;
        assert_eq!(got.0, Code::Ok, "request {i}");
    }
    let mut refused = None;
    for i in 0..8 {
        let got = attempt(&fx, &format!("2001:db8:1:3::{:x}", 0x200 + i), PASSWORD).await;
        if got.0 == Code::ResourceExhausted {
            refused = Some(got.1);
            break;
        }
    }
    assert_eq!(refused.as_deref(), Some("Too Many Requests"), "the /64 shares one bucket");
}

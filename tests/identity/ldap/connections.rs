//! Reaching the directory: StartTLS and LDAPS with a private CA, `TLS_VERIFY` refusing an
//! unknown CA, mutual TLS, fail-over to the next host on connection errors only, a directory
//! that is down or hangs (a clear 503 in bounded time, never a hang), and the brute-force
//! record keyed by the lower-cased username, shared by two replicas through Redis.

use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::faults::{Mode, TcpProxy};
use ashgate_testkit::identity::{IdentityFixture, TEST_REDIS_ENV};
use ashgate_testkit::ldap::{PEOPLE_DN, Slapd, SlapdOptions, Tls};
use tonic::Code;

use super::{INVALID, UNAVAILABLE, attempt, identity, login, me};

const LOCKED: &str = "Too many failed login attempts. Please try again later.";
/// Short deadlines so that a hung directory is noticed quickly.
const QUICK: [(&str, &str); 3] = [
    ("ASHGATE_LDAP_CONNECT_TIMEOUT_SECONDS", "1"),
    ("ASHGATE_LDAP_OPERATION_TIMEOUT_SECONDS", "1"),
    ("ASHGATE_LDAP_TIMEOUT_SECONDS", "3"),
];
/// A call that has not answered by then hangs (far beyond every configured deadline).
const HANG: Duration = Duration::from_secs(30);

async fn answers(fx: &IdentityFixture, username: &str, password: &str) -> (Code, String) {
    tokio::time::timeout(HANG, attempt(fx, username, password)).await.expect("LdapLogin hung")
}

#[tokio::test]
async fn starttls_ldaps_and_plain_ldap_with_a_private_ca() {
    let slapd = Slapd::start().await;
    for tls in [Tls::StartTls, Tls::Ldaps, Tls::None] {
        let fx = identity(&slapd, tls, "127.0.0.1", &[]).await;
        let bob = login(&fx, "bob", "bob-password").await.unwrap_or_else(|s| panic!("{tls:?}: {s:?}"));
        assert_eq!(me(&fx, &bob).await.role(), pb::Role::Member, "{tls:?}");
    }
    // The certificate names 127.0.0.1 and localhost: a host name it matches works too.
    let fx = identity(&slapd, Tls::Ldaps, "localhost", &[]).await;
    assert!(login(&fx, "bob", "bob-password").await.is_ok());
}

#[tokio::test]
async fn tls_verify_refuses_a_directory_signed_by_an_unknown_ca() {
    let slapd = Slapd::start().await;
    let other_ca = slapd.file("other-ca.pem");
    for tls in [Tls::StartTls, Tls::Ldaps] {
        // Trusting another CA, or only the system's: the handshake fails, nothing is sent.
        let fx = identity(&slapd, tls, "127.0.0.1", &[("PHOENIX_LDAP_TLS_CA_CERT_FILE", &other_ca)]).await;
        assert_eq!(
            answers(&fx, "bob", "bob-password").await,
            (Code::Unavailable, UNAVAILABLE.into()),
            "{tls:?}"
        );
        let fx = identity(&slapd, tls, "127.0.0.1", &[("PHOENIX_LDAP_TLS_CA_CERT_FILE", "")]).await;
        assert_eq!(
            answers(&fx, "bob", "bob-password").await,
            (Code::Unavailable, UNAVAILABLE.into()),
            "{tls:?}"
        );
        // PHOENIX_LDAP_TLS_VERIFY=false accepts it (testing only).
        let fx = identity(
            &slapd,
            tls,
            "127.0.0.1",
            &[("PHOENIX_LDAP_TLS_CA_CERT_FILE", &other_ca), ("PHOENIX_LDAP_TLS_VERIFY", "false")],
        )
        .await;
        assert!(login(&fx, "bob", "bob-password").await.is_ok(), "{tls:?}");
    }
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let slapd = Slapd::start_with(SlapdOptions { require_client_certificate: true }).await;
    let fx = identity(&slapd, Tls::Ldaps, "127.0.0.1", &[]).await;
    assert_eq!(answers(&fx, "bob", "bob-password").await, (Code::Unavailable, UNAVAILABLE.into()));
    let (cert, key) = (slapd.file("client.pem"), slapd.file("client.key"));
    for tls in [Tls::Ldaps, Tls::StartTls] {
        let fx = identity(
            &slapd,
            tls,
            "127.0.0.1",
            &[("PHOENIX_LDAP_TLS_CLIENT_CERT_FILE", &cert), ("PHOENIX_LDAP_TLS_CLIENT_KEY_FILE", &key)],
        )
        .await;
        assert!(login(&fx, "bob", "bob-password").await.is_ok(), "{tls:?}");
    }
}

#[tokio::test]
async fn fail_over_to_the_next_host_when_one_is_down_or_hangs() {
    let slapd = Slapd::start().await;
    // Nothing listens on 127.0.0.2 (slapd binds 127.0.0.1 only): connection refused.
    let fx = identity(&slapd, Tls::StartTls, "127.0.0.2,127.0.0.1", &[]).await;
    assert_eq!(me(&fx, &login(&fx, "alice", "alice-password").await.unwrap()).await.role(), pb::Role::Admin);
    // A host that accepts and never answers: the connection deadline moves on.
    let hung = TcpProxy::start(([127, 0, 0, 1], slapd.ldap_port).into()).await.unwrap();
    hung.set(Mode::Blackhole);
    let hosts = format!("127.0.0.1:{},127.0.0.1", hung.addr().port());
    let fx = identity(&slapd, Tls::StartTls, &hosts, &QUICK).await;
    let got = tokio::time::timeout(HANG, login(&fx, "alice", "alice-password")).await.expect("hung");
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_never_fails_over() {
    // Two directories: whoever answers first decides, as long as it answers.
    let (first, second) = (Slapd::start().await, Slapd::start().await);
    let zoe = |password: &str| {
        format!(
            "dn: uid=zoe,{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: zoe\ncn: Zoe\nsn: zoe\nmail: zoe@example.com\n\
             userPassword: {password}\n\n"
        )
    };
    first.add(&zoe("first-password")).await;
    second.add(&zoe("second-password")).await;
    second
        .add(&format!(
            "dn: uid=yann,{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: yann\ncn: Yann\nsn: yann\nmail: yann@example.com\n\
             userPassword: yann-password\n\n"
        ))
        .await;
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", first.ldap_port, second.ldap_port);
    let star = [("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", r#"[{"group_dn": "*", "role": "VIEWER"}]"#)];
    let fx = identity(&first, Tls::None, &hosts, &star).await;
    assert!(login(&fx, "zoe", "first-password").await.is_ok());
    assert_eq!(attempt(&fx, "zoe", "second-password").await, (Code::Unauthenticated, INVALID.into()));
    assert_eq!(attempt(&fx, "yann", "yann-password").await, (Code::Unauthenticated, INVALID.into()));
    // With the first one gone, the second answers.
    drop(first);
    assert!(login(&fx, "zoe", "second-password").await.is_ok());
}

#[tokio::test]
async fn a_directory_that_is_down_or_hangs_answers_unavailable_in_bounded_time() {
    let slapd = Slapd::start().await;
    let proxy = TcpProxy::start(([127, 0, 0, 1], slapd.ldap_port).into()).await.unwrap();
    let host = format!("127.0.0.1:{}", proxy.addr().port());
    let plain = identity(&slapd, Tls::None, &host, &QUICK).await;
    let tls = identity(&slapd, Tls::StartTls, &host, &QUICK).await;
    for mode in [Mode::Down, Mode::Blackhole] {
        proxy.set(mode);
        for fx in [&plain, &tls] {
            // Down: refused at once. Hung: the connection (StartTLS) or the first operation
            // (plain LDAP) runs into its deadline.
            for _ in 0..2 {
                let got = answers(fx, "bob", "bob-password").await;
                assert_eq!(got, (Code::Unavailable, UNAVAILABLE.into()), "{mode:?}");
            }
        }
    }
    proxy.set(Mode::Forward);
    assert!(login(&plain, "bob", "bob-password").await.is_ok());
    assert!(login(&tls, "bob", "bob-password").await.is_ok());

    // An attempt during an outage counts like a failed one (as in Phoenix): whether the
    // directory answers in time is something a flood of requests can influence, so a timeout
    // must not give a guess back.
    let strict =
        identity(&slapd, Tls::None, &host, &[("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", "2")])
            .await;
    proxy.set(Mode::Down);
    for _ in 0..2 {
        assert_eq!(
            answers(&strict, "alice", "alice-password").await,
            (Code::Unavailable, UNAVAILABLE.into())
        );
    }
    proxy.set(Mode::Forward);
    assert_eq!(answers(&strict, "alice", "alice-password").await, (Code::ResourceExhausted, LOCKED.into()));
}

#[tokio::test]
async fn failures_lock_the_lower_cased_username() {
    let slapd = Slapd::start().await;
    let fx = identity(
        &slapd,
        Tls::StartTls,
        "127.0.0.1",
        &[("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", "3")],
    )
    .await;
    for username in ["Bob", "bob", "BOB "] {
        assert_eq!(attempt(&fx, username, "guess").await, (Code::Unauthenticated, INVALID.into()));
    }
    // Locked before the directory is asked: the right password does not help.
    assert_eq!(attempt(&fx, "bob", "bob-password").await, (Code::ResourceExhausted, LOCKED.into()));
    // Others are not affected, and neither is a local account's email.
    assert!(login(&fx, "alice", "alice-password").await.is_ok());
    assert_eq!(
        crate::outcome(fx.auth().login(pb::LoginRequest { email: "bob".into(), password: "x".into() }).await),
        (Code::Unauthenticated, "Invalid email and/or password".into())
    );
}

#[tokio::test]
async fn two_replicas_share_the_brute_force_record_through_redis() {
    let redis = std::env::var(TEST_REDIS_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let slapd = Slapd::start().await;
    let settings =
        [("ASHGATE_REDIS_URL", redis.as_str()), ("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", "3")];
    let first = identity(&slapd, Tls::StartTls, "127.0.0.1", &settings).await;
    let base = slapd.env(Tls::StartTls, "127.0.0.1");
    let second = first.replica(|env| super::with(super::with(env, base), settings)).await;
    for replica in [&first, &second, &first] {
        assert_eq!(attempt(replica, "Carol", "guess").await, (Code::Unauthenticated, INVALID.into()));
    }
    for replica in [&first, &second] {
        assert_eq!(
            attempt(replica, "carol", "carol-password").await,
            (Code::ResourceExhausted, LOCKED.into())
        );
    }
    assert!(login(&second, "bob", "bob-password").await.is_ok(), "another username is not locked");
}

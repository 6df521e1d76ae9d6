//! LDAP sign-in against a real directory (OpenLDAP `slapd`, started by the testkit on free
//! ports with its own people, groups and private CA): roles from groups, refusals, filter
//! injection, accounts ([`accounts`]), and TLS, fail-over, a directory that is down or hangs,
//! and the brute-force record ([`connections`]).

mod accounts;
mod connections;

use ashgate_proto::identity as pb;
use ashgate_runtime::env::Env;
use ashgate_testkit::identity::{IdentityFixture, bearer};
use ashgate_testkit::ldap::{Slapd, Tls};
use tonic::Code;

use crate::outcome;

/// Phoenix's text for every refused LDAP sign-in.
pub const INVALID: &str = "Invalid username and/or password";
/// identity-svc's text when no directory server answers.
pub const UNAVAILABLE: &str = "LDAP server unavailable. Please try again later.";

/// `env` plus `pairs`.
pub fn with(mut env: Env, pairs: impl IntoIterator<Item = (impl AsRef<str>, impl Into<String>)>) -> Env {
    for (key, value) in pairs {
        env = env.with(key.as_ref(), value);
    }
    env
}

/// identity-svc signing in against `slapd` over `tls` at `host`, with `extra` on top.
pub async fn identity(slapd: &Slapd, tls: Tls, host: &str, extra: &[(&str, &str)]) -> IdentityFixture {
    let base = slapd.env(tls, host);
    let extra: Vec<(String, String)> =
        extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    IdentityFixture::start_with(move |env| with(with(env, base), extra)).await
}

/// Another replica of `fx` (same database and Redis), its LDAP settings changed by `extra`.
pub async fn replica(fx: &IdentityFixture, slapd: &Slapd, extra: &[(&str, &str)]) -> IdentityFixture {
    let base = slapd.env(Tls::StartTls, "127.0.0.1");
    let extra: Vec<(String, String)> =
        extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    fx.replica(move |env| with(with(env, base), extra)).await
}

/// A directory and identity-svc using it over StartTLS.
pub async fn directory(extra: &[(&str, &str)]) -> (Slapd, IdentityFixture) {
    let slapd = Slapd::start().await;
    let fx = identity(&slapd, Tls::StartTls, "127.0.0.1", extra).await;
    (slapd, fx)
}

/// `LdapLogin`.
pub async fn login(
    fx: &IdentityFixture,
    username: &str,
    password: &str,
) -> Result<pb::TokenPair, tonic::Status> {
    let request = pb::LdapLoginRequest { username: username.into(), password: password.into() };
    fx.auth().ldap_login(request).await.map(tonic::Response::into_inner)
}

/// The outcome of `LdapLogin`.
pub async fn attempt(fx: &IdentityFixture, username: &str, password: &str) -> (Code, String) {
    let request = pb::LdapLoginRequest { username: username.into(), password: password.into() };
    outcome(fx.auth().ldap_login(request).await)
}

/// Who a session belongs to.
pub async fn me(fx: &IdentityFixture, pair: &pb::TokenPair) -> pb::User {
    fx.users().get_self(bearer(pb::GetSelfRequest {}, &pair.access_token)).await.unwrap().into_inner()
}

#[tokio::test]
async fn groups_decide_the_role_and_other_people_are_refused() {
    let (_slapd, fx) = directory(&[]).await;

    let alice = login(&fx, "alice", "alice-password").await.unwrap();
    let user = me(&fx, &alice).await;
    assert_eq!(
        (user.role(), user.auth_method(), user.email.as_str(), user.username.as_str()),
        (pb::Role::Admin, pb::AuthMethod::Ldap, "alice@example.com", "Alice Admin")
    );
    assert!(!alice.password_needs_reset);
    // An LDAP admin is an admin: she may list users.
    let listed = fx.users().list_users(bearer(pb::ListUsersRequest::default(), &alice.access_token)).await;
    assert!(listed.unwrap().into_inner().users.iter().any(|u| u.email == "alice@example.com"));

    let bob = login(&fx, "bob", "bob-password").await.unwrap();
    assert_eq!(me(&fx, &bob).await.role(), pb::Role::Member);
    let forbidden = fx.users().list_users(bearer(pb::ListUsersRequest::default(), &bob.access_token)).await;
    assert_eq!(outcome(forbidden).0, Code::PermissionDenied);

    // The same person again: the same account.
    let again = login(&fx, "ALICE ", "alice-password").await.unwrap();
    assert_eq!(again.user_id, alice.user_id);

    for (username, password, why) in [
        ("carol", "carol-password", "in no mapped group"),
        ("alice", "wrong-password", "wrong password"),
        ("mallory", "mallory-password", "unknown user"),
        ("heidi", "heidi-password", "no mail attribute (PHOENIX_LDAP_ATTR_EMAIL=mail)"),
    ] {
        assert_eq!(attempt(&fx, username, password).await, (Code::Unauthenticated, INVALID.into()), "{why}");
    }
    // Phoenix: a blank (not empty) username is a failed sign-in.
    assert_eq!(attempt(&fx, "  ", "x").await, (Code::Unauthenticated, INVALID.into()));
    for (username, password) in [("", "x"), ("alice", "")] {
        let got = attempt(&fx, username, password).await;
        assert_eq!(got, (Code::Unauthenticated, "Username and password required".into()), "{username:?}");
    }
    // Phoenix's length limits hold before the directory is asked.
    let long = "a".repeat(257);
    assert_eq!(attempt(&fx, &long, "x").await, (Code::Unauthenticated, INVALID.into()));
    assert_eq!(attempt(&fx, "alice", &"p".repeat(1025)).await, (Code::Unauthenticated, INVALID.into()));
}

#[tokio::test]
async fn filter_injection_matches_nobody() {
    let (_slapd, fx) = directory(&[]).await;
    // Each of these would find Alice (and so accept her password) if the username reached the
    // filter unescaped: a wildcard, and a filter that closes the uid clause and adds a
    // match-everything branch.
    for username in ["al*", "*", "*)(uid=*", "alice)(|(uid=*", "alice)(objectClass=*", "a\\2a", "alice\0"] {
        assert_eq!(
            attempt(&fx, username, "alice-password").await,
            (Code::Unauthenticated, INVALID.into()),
            "{username:?}"
        );
    }
    // Nobody was created by any of them.
    let admin = fx.admin_token().await;
    let users =
        fx.users().list_users(bearer(pb::ListUsersRequest::default(), &admin)).await.unwrap().into_inner();
    assert!(users.users.iter().all(|u| u.auth_method() != pb::AuthMethod::Ldap), "{:?}", users.users);
}

#[tokio::test]
async fn posix_groups_are_searched() {
    let slapd = Slapd::start().await;
    let groups = format!(r#"["{}"]"#, ashgate_testkit::ldap::GROUPS_DN);
    let mappings = format!(
        r#"[{{"group_dn": "{}", "role": "VIEWER"}}, {{"group_dn": "{}", "role": "ADMIN"}}]"#,
        ashgate_testkit::ldap::OPERATORS_GROUP,
        ashgate_testkit::ldap::ADMINS_GROUP,
    );
    let fx = identity(
        &slapd,
        Tls::StartTls,
        "127.0.0.1",
        &[
            ("PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS", &groups),
            ("PHOENIX_LDAP_GROUP_SEARCH_FILTER", "(&(objectClass=posixGroup)(memberUid=%s))"),
            ("PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR", "uid"),
            ("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", &mappings),
        ],
    )
    .await;
    let dave = login(&fx, "dave", "dave-password").await.unwrap();
    assert_eq!(me(&fx, &dave).await.role(), pb::Role::Viewer);
    // With a group search, memberOf is not read: Alice's admins group is not a POSIX group.
    assert_eq!(attempt(&fx, "alice", "alice-password").await, (Code::Unauthenticated, INVALID.into()));
}

#[tokio::test]
async fn the_first_matching_mapping_wins_and_star_matches_everyone() {
    let slapd = Slapd::start().await;
    let mappings = format!(
        r#"[{{"group_dn": "{}", "role": "MEMBER"}}, {{"group_dn": "*", "role": "VIEWER"}}, {{"group_dn": "{}", "role": "ADMIN"}}]"#,
        ashgate_testkit::ldap::MEMBERS_GROUP.to_uppercase(),
        ashgate_testkit::ldap::ADMINS_GROUP,
    );
    let fx = identity(&slapd, Tls::StartTls, "127.0.0.1", &[("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", &mappings)])
        .await;
    // Bob: the members mapping (compared canonically, whatever the case) comes first.
    assert_eq!(me(&fx, &login(&fx, "bob", "bob-password").await.unwrap()).await.role(), pb::Role::Member);
    // Alice is an admin in the directory, but "*" comes before the admins mapping.
    assert_eq!(me(&fx, &login(&fx, "alice", "alice-password").await.unwrap()).await.role(), pb::Role::Viewer);
    // Carol is in no group at all: "*" still matches.
    assert_eq!(me(&fx, &login(&fx, "carol", "carol-password").await.unwrap()).await.role(), pb::Role::Viewer);
}

#[tokio::test]
async fn without_ldap_the_rpc_says_so() {
    let fx = IdentityFixture::start().await;
    let got = attempt(&fx, "alice", "alice-password").await;
    assert_eq!(got, (Code::Unavailable, "LDAP authentication is not configured on this server".into()));
}

/// `ashgate serve` with `env` (nothing else from this process): its exit code and stderr's last line.
fn serve_with(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("PHOENIX_WORKING_DIR", dir.path())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A configuration error stops it at once; one that does not would serve until killed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ashgate started despite {env:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr.lines().last().unwrap_or_default().to_owned())
}

#[test]
fn bad_ldap_settings_stop_ashgate_with_one_line_naming_the_variable() {
    let auth = [("PHOENIX_ENABLE_AUTH", "true"), ("PHOENIX_SECRET", ashgate_testkit::identity::SECRET)];
    let ldap = [
        ("PHOENIX_LDAP_HOST", "ldap.example.com"),
        ("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", r#"["ou=people,dc=example,dc=com"]"#),
        ("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", r#"[{"group_dn": "*", "role": "MEMBER"}]"#),
    ];
    let cases: [(Vec<(&str, &str)>, &str); 4] = [
        (
            [&auth[..], &[("PHOENIX_DISABLE_BASIC_AUTH", "true")]].concat(),
            "ashgate: PHOENIX_DISABLE_BASIC_AUTH: is set, but no alternative authentication method is configured: configure OAuth2 (PHOENIX_OAUTH2_<IDP>_CLIENT_ID) or LDAP (PHOENIX_LDAP_HOST)",
        ),
        (
            [
                &auth[..],
                &ldap[..],
                &[("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", r#"[{"group_dn": "*", "role": "OWNER"}]"#)],
            ]
            .concat(),
            "ashgate: PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0].role must be ADMIN, MEMBER or VIEWER (any case)",
        ),
        (
            [&auth[..], &ldap[..], &[("PHOENIX_LDAP_USER_SEARCH_FILTER", "(uid=alice)")]].concat(),
            "ashgate: PHOENIX_LDAP_USER_SEARCH_FILTER: must contain the '%s' placeholder (got \"(uid=alice)\")",
        ),
        (
            [&auth[..], &ldap[..], &[("PHOENIX_LDAP_TLS_CA_CERT_FILE", "/nonexistent/ca.pem")]].concat(),
            "ashgate: PHOENIX_LDAP_TLS_CA_CERT_FILE: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)",
        ),
    ];
    for (env, expected) in cases {
        // Later pairs override earlier ones, as in the process environment.
        let mut merged: Vec<(&str, &str)> = Vec::new();
        for (key, value) in env {
            merged.retain(|(k, _)| *k != key);
            merged.push((key, value));
        }
        let (code, line) = serve_with(&merged);
        assert_eq!((code, line.as_str()), (1, expected));
    }
}

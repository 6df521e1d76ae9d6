//! The account behind an LDAP sign-in: never a LOCAL or OAuth2 account with the same email,
//! pre-provisioned accounts matched by email, the role re-synced at every sign-in, unique ids,
//! a directory without emails, username collisions, ambiguous matches.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, bearer};
use ashgate_testkit::ldap::{ADMINS_GROUP, BASE_DN, MEMBERS_GROUP, PEOPLE_DN, Slapd, Tls};
use tonic::Code;

use super::{INVALID, UNAVAILABLE, attempt, directory, identity, login, me, replica};
use crate::outcome;

async fn create_ldap_user(fx: &IdentityFixture, email: &str, username: &str, role: pb::Role) -> pb::User {
    let request = pb::CreateUserRequest {
        email: email.into(),
        username: username.into(),
        role: role.into(),
        auth_method: pb::AuthMethod::Ldap.into(),
        ..Default::default()
    };
    fx.users().create_user(bearer(request, ADMIN_SECRET)).await.unwrap().into_inner()
}

#[tokio::test]
async fn an_email_of_a_local_account_is_refused_never_linked() {
    let (_slapd, fx) = directory(&[]).await;
    // Erin's directory entry says admin@localhost: the seeded local admin's email.
    assert_eq!(attempt(&fx, "erin", "erin-password").await, (Code::Unauthenticated, INVALID.into()));
    let admin = fx.login("admin@localhost", "admin").await;
    let account = me(&fx, &admin).await;
    assert_eq!((account.auth_method(), account.role()), (pb::AuthMethod::Local, pb::Role::Admin));
    // An LDAP-created user cannot take a local user's email either way round.
    let request = pb::CreateUserRequest {
        email: "admin@localhost".into(),
        username: "impostor".into(),
        role: pb::Role::Member.into(),
        auth_method: pb::AuthMethod::Ldap.into(),
        ..Default::default()
    };
    let got = outcome(fx.users().create_user(bearer(request, ADMIN_SECRET)).await);
    assert_eq!(got, (Code::AlreadyExists, "Email already exists".into()));
    let with_password = pb::CreateUserRequest {
        email: "x@example.com".into(),
        username: "x".into(),
        role: pb::Role::Member.into(),
        auth_method: pb::AuthMethod::Ldap.into(),
        password: "a-password".into(),
        ..Default::default()
    };
    let got = outcome(fx.users().create_user(bearer(with_password, ADMIN_SECRET)).await);
    assert_eq!(got, (Code::InvalidArgument, "LDAP users cannot have a password".into()));
}

#[tokio::test]
async fn without_sign_up_only_pre_provisioned_accounts_sign_in() {
    let (_slapd, fx) = directory(&[("PHOENIX_LDAP_ALLOW_SIGN_UP", "false")]).await;
    assert_eq!(attempt(&fx, "bob", "bob-password").await, (Code::Unauthenticated, INVALID.into()));
    let provisioned = create_ldap_user(&fx, "Bob@Example.com", "bobby", pb::Role::Viewer).await;
    assert_eq!(provisioned.auth_method(), pb::AuthMethod::Ldap);
    let bob = login(&fx, "bob", "bob-password").await.unwrap();
    assert_eq!(bob.user_id, provisioned.id, "matched by email");
    let account = me(&fx, &bob).await;
    assert_eq!(
        (account.role(), account.username.as_str()),
        (pb::Role::Member, "bobby"),
        "role synced, name kept"
    );
    // An LDAP account has no password to sign in with.
    let local = outcome(
        fx.auth()
            .login(pb::LoginRequest { email: "bob@example.com".into(), password: "bob-password".into() })
            .await,
    );
    assert_eq!(local, (Code::Unauthenticated, "Invalid email and/or password".into()));
}

#[tokio::test]
async fn the_role_follows_the_directory_at_every_sign_in() {
    let (slapd, fx) = directory(&[]).await;
    let first = login(&fx, "alice", "alice-password").await.unwrap();
    assert_eq!(me(&fx, &first).await.role(), pb::Role::Admin);
    slapd
        .modify(&format!(
            "dn: {ADMINS_GROUP}\nchangetype: modify\ndelete: member\nmember: uid=alice,{PEOPLE_DN}\n\n\
             dn: {MEMBERS_GROUP}\nchangetype: modify\nadd: member\nmember: uid=alice,{PEOPLE_DN}\n"
        ))
        .await;
    let second = login(&fx, "alice", "alice-password").await.unwrap();
    assert_eq!(second.user_id, first.user_id);
    assert_eq!(me(&fx, &second).await.role(), pb::Role::Member);
    // The admin session opened before the demotion is over.
    let old = outcome(fx.users().get_self(bearer(pb::GetSelfRequest {}, &first.access_token)).await);
    assert_eq!(old.0, Code::Unauthenticated);
    // Out of every mapped group: refused, and the account is not signed in.
    slapd
        .modify(&format!(
            "dn: {MEMBERS_GROUP}\nchangetype: modify\ndelete: member\nmember: uid=alice,{PEOPLE_DN}\n"
        ))
        .await;
    assert_eq!(attempt(&fx, "alice", "alice-password").await, (Code::Unauthenticated, INVALID.into()));
}

#[tokio::test]
async fn unique_ids_survive_email_changes_and_stop_recycled_emails() {
    let (slapd, fx) = directory(&[("PHOENIX_LDAP_ATTR_UNIQUE_ID", "entryUUID")]).await;
    let alice = login(&fx, "alice", "alice-password").await.unwrap();
    slapd
        .modify(&format!(
            "dn: uid=alice,{PEOPLE_DN}\nchangetype: modify\nreplace: mail\nmail: alice.new@example.com\n"
        ))
        .await;
    let again = login(&fx, "alice", "alice-password").await.unwrap();
    assert_eq!(again.user_id, alice.user_id, "found by entryUUID");
    assert_eq!(me(&fx, &again).await.email, "alice.new@example.com", "email synced");
    // Bob's entry now carries Alice's old address... and then her new one: the account with
    // that email has another unique id, so it is someone else's.
    slapd
        .modify(&format!(
            "dn: uid=bob,{PEOPLE_DN}\nchangetype: modify\nreplace: mail\nmail: alice.new@example.com\n"
        ))
        .await;
    assert_eq!(attempt(&fx, "bob", "bob-password").await, (Code::Unauthenticated, INVALID.into()));
    // A pre-provisioned account (no unique id yet) takes its owner's id at first sign-in.
    let provisioned = create_ldap_user(&fx, "carol@example.com", "carol", pb::Role::Viewer).await;
    let replica = replica(
        &fx,
        &slapd,
        &[
            ("PHOENIX_LDAP_ATTR_UNIQUE_ID", "entryUUID"),
            ("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", r#"[{"group_dn": "*", "role": "MEMBER"}]"#),
        ],
    )
    .await;
    let carol = login(&replica, "carol", "carol-password").await.unwrap();
    assert_eq!(carol.user_id, provisioned.id);
    // ... and keeps it: the directory's mail can change now.
    slapd
        .modify(&format!(
            "dn: uid=carol,{PEOPLE_DN}\nchangetype: modify\nreplace: mail\nmail: carol.new@example.com\n"
        ))
        .await;
    let again = login(&replica, "carol", "carol-password").await.unwrap();
    assert_eq!(again.user_id, provisioned.id);
    assert_eq!(slapd.entry_uuid("carol").await.len(), 36);
}

#[tokio::test]
async fn a_directory_without_emails_signs_people_in_by_unique_id() {
    let slapd = Slapd::start().await;
    let fx = identity(
        &slapd,
        Tls::StartTls,
        "127.0.0.1",
        &[("PHOENIX_LDAP_ATTR_EMAIL", "null"), ("PHOENIX_LDAP_ATTR_UNIQUE_ID", "entryUUID")],
    )
    .await;
    let heidi = login(&fx, "heidi", "heidi-password").await.unwrap();
    let account = me(&fx, &heidi).await;
    assert_eq!((account.email.as_str(), account.username.as_str()), ("", "Heidi Nomail"));
    // Two people without email coexist; each comes back to their own account.
    let bob = login(&fx, "bob", "bob-password").await.unwrap();
    assert_ne!(bob.user_id, heidi.user_id);
    assert_eq!(me(&fx, &bob).await.email, "", "the directory's mail is not read in this mode");
    assert_eq!(login(&fx, "heidi", "heidi-password").await.unwrap().user_id, heidi.user_id);
}

#[tokio::test]
async fn usernames_come_from_display_names_and_collisions_get_a_suffix() {
    let (_slapd, fx) = directory(&[]).await;
    login(&fx, "alice", "alice-password").await.unwrap();
    // Grace's display name is "Alice Admin" too.
    let grace = login(&fx, "grace", "grace-password").await.unwrap();
    let name = me(&fx, &grace).await.username;
    // Phoenix's form: six hex digits in brackets.
    let suffix = name.strip_prefix("Alice Admin (").and_then(|rest| rest.strip_suffix(')'));
    assert!(suffix.is_some_and(|s| s.len() == 6 && s.chars().all(|c| c.is_ascii_hexdigit())), "{name}");
}

#[tokio::test]
async fn an_ambiguous_match_is_refused() {
    let slapd = Slapd::start().await;
    let everywhere = format!(r#"["{BASE_DN}"]"#);
    let fx =
        identity(&slapd, Tls::StartTls, "127.0.0.1", &[("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", &everywhere)])
            .await;
    // uid=frank exists under ou=people and ou=contractors.
    assert_eq!(attempt(&fx, "frank", "frank-password").await, (Code::Unauthenticated, INVALID.into()));
    assert!(login(&fx, "bob", "bob-password").await.is_ok());
    // Base DNs are searched in order; the first that has the person decides.
    let ordered = format!(r#"["ou=contractors,{BASE_DN}", "{PEOPLE_DN}"]"#);
    let replica = replica(&fx, &slapd, &[("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", &ordered)]).await;
    let frank = login(&replica, "frank", "frank-password").await.unwrap();
    assert_eq!(me(&replica, &frank).await.email, "frank.c@example.com");
}

#[tokio::test]
async fn anonymous_search_and_a_refused_service_account() {
    let (slapd, fx) = directory(&[("PHOENIX_LDAP_BIND_DN", ""), ("PHOENIX_LDAP_BIND_PASSWORD", "")]).await;
    assert!(login(&fx, "bob", "bob-password").await.is_ok(), "the directory allows anonymous search");
    drop(fx);
    // A wrong service password is the operator's problem: 503, not "wrong password".
    let fx = identity(&slapd, Tls::StartTls, "127.0.0.1", &[("PHOENIX_LDAP_BIND_PASSWORD", "not-it")]).await;
    assert_eq!(attempt(&fx, "bob", "bob-password").await, (Code::Unavailable, UNAVAILABLE.into()));
}

#[tokio::test]
async fn phoenix_admins_become_ldap_accounts_when_ldap_is_the_only_way_in() {
    let (_slapd, fx) = directory(&[
        ("PHOENIX_DISABLE_BASIC_AUTH", "true"),
        ("PHOENIX_ADMINS", "Bob The Admin=bob@example.com"),
    ])
    .await;
    let bob = login(&fx, "bob", "bob-password").await.unwrap();
    let account = me(&fx, &bob).await;
    assert_eq!(
        (account.username.as_str(), account.auth_method(), account.role()),
        ("Bob The Admin", pb::AuthMethod::Ldap, pb::Role::Member),
        "the seeded account, its role re-synced from the directory (Phoenix)"
    );
}

//! Sign-ins that are not passwords: LDAP against a real directory (`slapd`) and OAuth2 against
//! a real OpenID Provider. Each records its method, its sign-ups as user creations, and its
//! refusals as failed sign-ins.

use ashgate_proto::identity as pb;
use ashgate_runtime::env::Env;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::{ADMIN_SECRET, bearer};
use ashgate_testkit::ldap::{ADMINS_GROUP, MEMBERS_GROUP, PEOPLE_DN, Slapd, Tls};
use ashgate_testkit::oauth2::{Idp, gateway_for, login_error, sign_in, signed_in_user};
use ashgate_testkit::oidc::OidcProvider;
use serde_json::{Value, json};

use super::{aggregated, assert_no_secret_stored, facts, gid, id_of, of_type};

fn user(id: i64, name: &str) -> Value {
    json!({"type": "user", "id": gid("User", id), "name": name})
}

fn with(mut env: Env, pairs: &[(&str, String)]) -> Env {
    for (key, value) in pairs {
        env = env.with(key, value.clone());
    }
    env
}

#[tokio::test]
async fn ldap_sign_ins_and_sign_ups() {
    let slapd = Slapd::start().await;
    let identity_env = slapd.env(Tls::StartTls, "127.0.0.1");
    let gateway_env = [("PHOENIX_LDAP_HOST", "127.0.0.1".to_owned())];
    let fixture =
        GatewayFixture::start_configured(true, |env| with(env, &identity_env), |env| with(env, &gateway_env))
            .await;
    let login = |username: &'static str, password: &'static str| {
        GatewayFixture::client()
            .post(fixture.url("/auth/ldap/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
    };
    assert_eq!(login("alice", "not-alices-password").await.unwrap().status(), 401);
    let (seen, total) = aggregated(&of_type(&fixture, "sign_in_failed").await);
    assert_eq!(total, 1);
    assert_eq!(
        seen,
        [
            json!({"type": "sign_in_failed", "actor": null, "subject": {"type": "sign_in_name", "id": null, "name": "alice"},
                "user": null, "client_address": "127.0.0.1", "outcome": "failure", "detail": {"method": "ldap"}})
        ]
    );

    assert_eq!(login("alice", "alice-password").await.unwrap().status(), 204);
    let created = of_type(&fixture, "user_created").await;
    assert_eq!(created.len(), 1);
    let alice = id_of(created[0]["subject"]["id"].as_str().unwrap());
    assert_eq!(
        facts(&created[0]),
        json!({"type": "user_created", "count": 1, "actor": null, "subject": user(alice, "Alice Admin"),
               "user": gid("User", alice), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"role": "ADMIN", "auth_method": "LDAP", "source": "ldap_sign_up"}})
    );
    let signed_in = of_type(&fixture, "sign_in_succeeded").await;
    assert_eq!(
        facts(&signed_in[0]),
        json!({"type": "sign_in_succeeded", "count": 1, "actor": user(alice, "Alice Admin"),
               "subject": user(alice, "Alice Admin"), "user": gid("User", alice), "client_address": "127.0.0.1",
               "outcome": "success", "detail": {"method": "ldap", "email": "alice@example.com", "username": "alice"}})
    );

    // Moved to the members' group: her role follows at the next sign-in, and that is recorded.
    slapd
        .modify(&format!(
            "dn: {ADMINS_GROUP}\nchangetype: modify\ndelete: member\nmember: uid=alice,{PEOPLE_DN}\n\n\
             dn: {MEMBERS_GROUP}\nchangetype: modify\nadd: member\nmember: uid=alice,{PEOPLE_DN}\n"
        ))
        .await;
    assert_eq!(login("alice", "alice-password").await.unwrap().status(), 204);
    let changed = of_type(&fixture, "user_role_changed").await;
    assert_eq!(
        facts(&changed[0]),
        json!({"type": "user_role_changed", "count": 1, "actor": user(alice, "Alice Admin"),
               "subject": user(alice, "Alice Admin"), "user": gid("User", alice), "client_address": "127.0.0.1",
               "outcome": "success", "detail": {"from": "ADMIN", "to": "MEMBER", "source": "ldap"}})
    );
    assert_no_secret_stored(&fixture, &["alice-password", "not-alices-password"]).await;
}

#[tokio::test]
async fn oauth2_sign_ins_sign_ups_and_refusals() {
    let op = OidcProvider::start().await;
    let idps = [
        Idp::new("open", &[("ROLE_ATTRIBUTE_PATH", "role"), ("ROLE_MAPPING", "platform-admin:ADMIN")]),
        Idp::new("closed", &[("ALLOW_SIGN_UP", "false")]),
    ];
    let fixture = gateway_for(&op, &idps, &[], &[]).await;

    let response = sign_in(&fixture, &op, "closed", "bob", "bob-password").await;
    assert_eq!(login_error(&response).as_deref(), Some("sign_in_not_allowed"));
    let (seen, total) = aggregated(&of_type(&fixture, "sign_in_failed").await);
    assert_eq!(total, 1);
    assert_eq!(
        seen,
        [json!({"type": "sign_in_failed", "actor": null,
                "subject": {"type": "sign_in_name", "id": null, "name": "bob@example.com"},
                "user": null, "client_address": "127.0.0.1", "outcome": "failure", "detail": {"method": "oauth2"}})]
    );

    let alice = signed_in_user(&fixture, &op, "open", "alice").await;
    let alice = id_of(alice["id"].as_str().unwrap());
    let created = of_type(&fixture, "user_created").await;
    assert_eq!(
        facts(&created[0]),
        json!({"type": "user_created", "count": 1, "actor": null, "subject": user(alice, "Alice Liddell"),
               "user": gid("User", alice), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"role": "ADMIN", "auth_method": "OAUTH2", "source": "oauth2_sign_up"}})
    );
    let signed_in = of_type(&fixture, "sign_in_succeeded").await;
    assert_eq!(
        facts(&signed_in[0]),
        json!({"type": "sign_in_succeeded", "count": 1, "actor": user(alice, "Alice Liddell"),
               "subject": user(alice, "Alice Liddell"), "user": gid("User", alice), "client_address": "127.0.0.1",
               "outcome": "success",
               "detail": {"method": "oauth2", "email": "alice@example.com", "client_id": "open-client"}})
    );

    // Demoted by the admin secret; the provider's role wins again at her next sign-in (resync).
    let demote = pb::UpdateRoleRequest { user_id: alice, role: pb::Role::Member.into() };
    fixture.identity.users().update_role(bearer(demote, ADMIN_SECRET)).await.unwrap();
    assert_eq!(signed_in_user(&fixture, &op, "open", "alice").await["role"], "ADMIN");
    let changed = of_type(&fixture, "user_role_changed").await;
    let facts_of: Vec<Value> = changed.iter().map(facts).collect();
    assert_eq!(
        facts_of,
        [
            json!({"type": "user_role_changed", "count": 1, "actor": user(alice, "Alice Liddell"),
                   "subject": user(alice, "Alice Liddell"), "user": gid("User", alice),
                   "client_address": "127.0.0.1", "outcome": "success",
                   "detail": {"from": "MEMBER", "to": "ADMIN", "source": "oauth2"}}),
            json!({"type": "user_role_changed", "count": 1,
                   "actor": {"type": "admin_secret", "id": null, "name": "admin secret"},
                   "subject": user(alice, "Alice Liddell"), "user": gid("User", alice),
                   "client_address": "127.0.0.1", "outcome": "success",
                   "detail": {"from": "ADMIN", "to": "MEMBER"}}),
        ]
    );
}

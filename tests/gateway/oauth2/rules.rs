//! Who may sign in, with which role: sign-up disallowed, an email in use, no email, allowed
//! groups, role mapping (strict, nested paths, resync), password sign-in disabled with
//! auto-login, client_secret_post with claims in the ID token, and the per-address limit.

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::base64::Engine as _;
use ashgate_testkit::gateway::deps::base64::engine::general_purpose::STANDARD;
use ashgate_testkit::identity::{ADMIN_SECRET, bearer};
use ashgate_testkit::oidc::OidcProvider;
use serde_json::json;

use super::{Idp, gateway_for, login_error, login_request, sign_in, signed_in_user};
use crate::support::page;

fn user_id(global_id: &serde_json::Value) -> i64 {
    let decoded = String::from_utf8(STANDARD.decode(global_id.as_str().unwrap()).unwrap()).unwrap();
    decoded.strip_prefix("User:").unwrap().parse().unwrap()
}

async fn create_user(fixture: &GatewayFixture, body: serde_json::Value) -> u16 {
    GatewayFixture::client()
        .post(fixture.url("/v1/users"))
        .bearer_auth(ADMIN_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn sign_up_disallowed_email_in_use_and_missing_email() {
    let op = OidcProvider::start().await;
    let idps = [Idp::new("open", &[]), Idp::new("closed", &[("ALLOW_SIGN_UP", "false")])];
    let fixture = gateway_for(&op, &idps, &[], &[]).await;

    let response = sign_in(&fixture, &op, "closed", "alice", "alice-password").await;
    assert_eq!(login_error(&response).as_deref(), Some("sign_in_not_allowed"));
    // An admin pre-provisions alice as an OAuth2 user: now she may sign in, and is linked.
    let body = json!({"user": {"email": "alice@example.com", "username": "alice", "role": "VIEWER", "auth_method": "OAUTH2"}});
    assert_eq!(create_user(&fixture, body).await, 201);
    let alice = signed_in_user(&fixture, &op, "closed", "alice").await;
    assert_eq!(
        (alice["email"].as_str(), alice["role"].as_str()),
        (Some("alice@example.com"), Some("VIEWER"))
    );
    assert_eq!(alice["oauth2_user_id"], "alice");

    // A local account owns bob's email: never silently linked.
    let body = json!({"user": {"email": "bob@example.com", "username": "bob", "role": "MEMBER", "auth_method": "LOCAL", "password": "bob-local-1"}});
    assert_eq!(create_user(&fixture, body).await, 201);
    let response = sign_in(&fixture, &op, "open", "bob", "bob-password").await;
    assert_eq!(login_error(&response).as_deref(), Some("email_in_use"));
    let page = page(&fixture, "/login?error=email_in_use").await;
    assert!(page.contains("An account for this email address already exists."));

    // No email claim at all.
    let response = sign_in(&fixture, &op, "open", "nomail", "nomail-password").await;
    assert_eq!(login_error(&response).as_deref(), Some("missing_email_scope"));
}

const ACCOUNTS: &str = r#"{
  "eng": {"password": "eng-password", "claims": {"email": "eng@example.com", "name": "Eng", "groups": ["engineering"]}},
  "sales": {"password": "sales-password", "claims": {"email": "sales@example.com", "name": "Sales", "groups": ["sales"], "role": "seller"}},
  "owner": {"password": "owner-password", "claims": {"email": "owner@example.com", "name": "Owner", "role": "platform-admin"}},
  "nobody": {"password": "nobody-password", "claims": {"email": "nobody@example.com", "name": "Nobody", "role": "seller"}},
  "deep": {"password": "deep-password", "claims": {"email": "deep@example.com", "name": "Deep", "realm_access": {"roles": ["viewer-role", "x"]}}}
}"#;

#[tokio::test]
async fn allowed_groups_and_role_mapping() {
    let op = OidcProvider::start_with(&[("OIDC_ACCOUNTS", ACCOUNTS)]).await;
    let idps = [
        Idp::new("grp", &[("GROUPS_ATTRIBUTE_PATH", "groups"), ("ALLOWED_GROUPS", "platform, engineering")]),
        Idp::new("roles", &[("ROLE_ATTRIBUTE_PATH", "role"), ("ROLE_MAPPING", "platform-admin:ADMIN")]),
        Idp::new(
            "strict",
            &[
                ("ROLE_ATTRIBUTE_PATH", "role"),
                ("ROLE_MAPPING", "platform-admin:ADMIN"),
                ("ROLE_ATTRIBUTE_STRICT", "true"),
            ],
        ),
        Idp::new(
            "deep",
            &[("ROLE_ATTRIBUTE_PATH", "realm_access.roles"), ("ROLE_MAPPING", "viewer-role:viewer")],
        ),
    ];
    let fixture = gateway_for(&op, &idps, &[], &[]).await;

    // Groups: one listed group is enough; none is a refusal.
    assert_eq!(signed_in_user(&fixture, &op, "grp", "eng").await["role"], "VIEWER");
    let response = sign_in(&fixture, &op, "grp", "sales", "sales-password").await;
    assert_eq!(login_error(&response).as_deref(), Some("auth_failed"));
    // Strict: an unmapped role is a refusal.
    let response = sign_in(&fixture, &op, "strict", "sales", "sales-password").await;
    assert_eq!(login_error(&response).as_deref(), Some("auth_failed"));
    // Mapped and unmapped (not strict) roles.
    let owner = signed_in_user(&fixture, &op, "roles", "owner").await;
    assert_eq!(owner["role"], "ADMIN");
    assert_eq!(signed_in_user(&fixture, &op, "roles", "nobody").await["role"], "VIEWER");
    // A nested path whose value is a list: its first element is mapped.
    assert_eq!(signed_in_user(&fixture, &op, "deep", "deep").await["role"], "VIEWER");

    // ROLE_RESYNC (default true): the provider's role wins again at the next sign-in.
    let demote = pb::UpdateRoleRequest { user_id: user_id(&owner["id"]), role: pb::Role::Member.into() };
    fixture.identity.users().update_role(bearer(demote, ADMIN_SECRET)).await.unwrap();
    assert_eq!(signed_in_user(&fixture, &op, "roles", "owner").await["role"], "ADMIN");
}

#[tokio::test]
async fn basic_auth_disabled_with_auto_login() {
    let op = OidcProvider::start().await;
    let idps = [Idp::new("test", &[("AUTO_LOGIN", "true")])];
    let fixture = gateway_for(
        &op,
        &idps,
        &[("PHOENIX_DISABLE_BASIC_AUTH", "true"), ("PHOENIX_OAUTH2_TEST_CLIENT_ID", "test-client")],
        &[("PHOENIX_DISABLE_BASIC_AUTH", "true")],
    )
    .await;
    let client = GatewayFixture::client();
    // /login goes straight to the provider, query kept.
    let response = client.get(fixture.url("/login?returnUrl=%2Fsettings")).send().await.unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(super::location(&response), "/oauth2/test/login?returnUrl=%2Fsettings");
    // Coming back with an error shows the page (no loop), without a password form.
    let page = page(&fixture, "/login?error=auth_failed").await;
    assert!(page.contains("Sign in with Test") && !page.contains("id=\"password\""), "{page}");
    assert!(!page.contains("Forgot password"));
    // Password sign-in, recovery and local users are refused.
    let login = json!({"email": "admin@localhost", "password": "admin"});
    assert_eq!(client.post(fixture.url("/auth/login")).json(&login).send().await.unwrap().status(), 403);
    let reset = json!({"email": "admin@localhost"});
    assert_eq!(
        client.post(fixture.url("/auth/password-reset-email")).json(&reset).send().await.unwrap().status(),
        403
    );
    let reset = json!({"token": "x", "password": "y"});
    assert_eq!(
        client.post(fixture.url("/auth/password-reset")).json(&reset).send().await.unwrap().status(),
        403
    );
    let local = json!({"user": {"email": "l@example.com", "username": "l", "role": "MEMBER", "auth_method": "LOCAL", "password": "pw-local-1"}});
    assert_eq!(create_user(&fixture, local).await, 403);
    // The provider still signs people in; sign-out does not bounce back into the provider.
    let me = signed_in_user(&fixture, &op, "test", "alice").await;
    assert_eq!(me["email"], "alice@example.com");
    let out = client.get(fixture.url("/auth/logout")).send().await.unwrap();
    assert_eq!(super::location(&out), "/login?done=signed-out");
    let page = client.get(fixture.url("/login?done=signed-out")).send().await.unwrap();
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn client_secret_post_with_claims_in_the_id_token_and_rate_limit() {
    let op = OidcProvider::start_with(&[("OIDC_ID_TOKEN_CLAIMS", "true")]).await;
    let idps = [Idp::new(
        "post",
        &[("TOKEN_ENDPOINT_AUTH_METHOD", "client_secret_post"), ("DISPLAY_NAME", "Acme SSO")],
    )];
    let fixture = gateway_for(&op, &idps, &[], &[("PHOENIX_DISABLE_RATE_LIMIT", "false")]).await;
    let page = page(&fixture, "/login").await;
    assert!(page.contains("Sign in with Acme SSO"));
    // One sign-in (one login request), then the burst of 6 per address is used up.
    assert_eq!(signed_in_user(&fixture, &op, "post", "alice").await["email"], "alice@example.com");
    for _ in 0..5 {
        assert_eq!(login_request(&fixture, "post", None).await.status(), 302);
    }
    let limited = login_request(&fixture, "post", None).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.text().await.unwrap(), "Too Many Requests");
}

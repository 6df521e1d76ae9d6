//! Whose account an OAuth2 sign-in opens. An admin pre-creates an OAUTH2 user for
//! boss@example.com (not linked to any identity yet). A provider account whose claims say
//! `email: boss@example.com` but `email_verified: false` used to sign in as that ADMIN. Now:
//! an email the provider says is unverified is refused; a pre-created account is linked by
//! email only when the email is verified and only if it was never linked; once linked to
//! (client id, subject), no other subject or provider signs in as it.

use ashgate_testkit::cookies::set_cookies;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_SECRET;
use ashgate_testkit::oauth2::{Idp, gateway_for, login_error, session_cookies, sign_in, whoami};
use ashgate_testkit::oidc::OidcProvider;
use serde_json::json;

const ACCOUNTS: &str = r#"{
  "mallory": {"password": "mallory-password", "claims": {"email": "boss@example.com", "email_verified": false, "name": "Mallory"}},
  "unsure": {"password": "unsure-password", "claims": {"email": "boss@example.com", "name": "Unsure"}},
  "stringly": {"password": "stringly-password", "claims": {"email": "boss@example.com", "email_verified": "false", "name": "S"}},
  "boss": {"password": "boss-password", "claims": {"email": "boss@example.com", "email_verified": true, "name": "Boss"}},
  "twin": {"password": "twin-password", "claims": {"email": "boss@example.com", "email_verified": true, "name": "Twin"}}
}"#;

/// Signs `account` in through `idp` and expects the sign-in page with `error`, and no session.
async fn refused(fixture: &GatewayFixture, op: &OidcProvider, idp: &str, account: &str, error: &str) {
    let response = sign_in(fixture, op, idp, account, &format!("{account}-password")).await;
    let session = set_cookies(response.headers())
        .into_iter()
        .any(|c| c.name.starts_with("phoenix-") && c.name.ends_with("-token") && !c.value.is_empty());
    assert!(!session, "{account} via {idp}: no session cookie");
    assert_eq!(login_error(&response).as_deref(), Some(error), "{account} via {idp}");
}

#[tokio::test]
async fn an_unverified_or_second_identity_never_opens_a_pre_created_account() {
    let op = OidcProvider::start_with(&[("OIDC_ACCOUNTS", ACCOUNTS)]).await;
    let fixture = gateway_for(&op, &[Idp::new("test", &[]), Idp::new("other", &[])], &[], &[]).await;
    let created = GatewayFixture::client()
        .post(fixture.url("/v1/users"))
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .json(&json!({"user": {"email": "boss@example.com", "username": "boss", "role": "ADMIN",
            "auth_method": "OAUTH2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let boss_id = created.json::<serde_json::Value>().await.unwrap()["data"]["id"].clone();

    // The provider says it has not verified the email (as a boolean, or as a string).
    refused(&fixture, &op, "test", "mallory", "email_not_verified").await;
    refused(&fixture, &op, "test", "stringly", "email_not_verified").await;
    // It does not say: the account exists, and an unverified email does not link to it.
    refused(&fixture, &op, "test", "unsure", "email_in_use").await;

    // The verified owner links the account and gets it.
    let response = sign_in(&fixture, &op, "test", "boss", "boss-password").await;
    assert_eq!(response.status(), 302, "{:?}", login_error(&response));
    let me = whoami(&fixture, &session_cookies(&response)).await;
    assert_eq!((me["id"].clone(), me["role"].as_str()), (boss_id.clone(), Some("ADMIN")));

    // Linked now: another subject with the same verified email, at the same provider or at
    // another, never signs in as the boss.
    refused(&fixture, &op, "test", "twin", "sign_in_not_allowed").await;
    refused(&fixture, &op, "other", "boss", "email_in_use").await;
    refused(&fixture, &op, "test", "mallory", "email_not_verified").await;
    // The owner still does.
    let again = sign_in(&fixture, &op, "test", "boss", "boss-password").await;
    assert_eq!(whoami(&fixture, &session_cookies(&again)).await["id"], boss_id);
}

/// `email_verified` speaks of the `email` claim. With `EMAIL_ATTRIBUTE_PATH=preferred_username`
/// (a name users often choose themselves at their provider) a verified `email` of one's own
/// used to vouch for a `preferred_username` of `boss@example.com` and open the boss's account.
#[tokio::test]
async fn a_verified_email_vouches_only_for_itself() {
    let accounts = r#"{"mallory": {"password": "mallory-password", "claims": {"email": "mallory@evil.test",
        "email_verified": true, "preferred_username": "boss@example.com", "name": "Mallory"}}}"#;
    let op = OidcProvider::start_with(&[("OIDC_ACCOUNTS", accounts), ("OIDC_ID_TOKEN_CLAIMS", "true")]).await;
    let fixture =
        gateway_for(&op, &[Idp::new("kc", &[("EMAIL_ATTRIBUTE_PATH", "preferred_username")])], &[], &[])
            .await;
    let created = GatewayFixture::client()
        .post(fixture.url("/v1/users"))
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .json(&json!({"user": {"email": "boss@example.com", "username": "boss", "role": "ADMIN",
            "auth_method": "OAUTH2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    refused(&fixture, &op, "kc", "mallory", "email_in_use").await;
}

/// Phoenix's role rules: without a role mapping new users are VIEWERs; with one, a user whose
/// claim maps to nothing (and `ROLE_ATTRIBUTE_STRICT` off) is a VIEWER, and with
/// `ROLE_RESYNC` (the default) an existing ADMIN whose provider role was taken away is demoted
/// at the next sign-in. They used to become MEMBER and to keep ADMIN.
#[tokio::test]
async fn an_unmapped_role_is_viewer_and_demotes() {
    let accounts = r#"{
      "carol": {"password": "carol-password", "claims": {"email": "carol@example.com", "email_verified": true, "name": "Carol"}},
      "dave": {"password": "dave-password", "claims": {"email": "dave@example.com", "email_verified": true, "name": "Dave"}}
    }"#;
    let op = OidcProvider::start_with(&[("OIDC_ACCOUNTS", accounts)]).await;
    let mapped = [("ROLE_ATTRIBUTE_PATH", "roles[0]"), ("ROLE_MAPPING", "Phoenix.Admin:ADMIN")];
    let idps = [Idp::new("ent", &mapped), Idp::new("plain", &[])];
    let fixture = gateway_for(&op, &idps, &[], &[]).await;
    let created = GatewayFixture::client()
        .post(fixture.url("/v1/users"))
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .json(&json!({"user": {"email": "carol@example.com", "username": "carol", "role": "ADMIN",
            "auth_method": "OAUTH2", "oauth2_client_id": "ent-client", "oauth2_user_id": "carol"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let role_of = |response: ashgate_testkit::gateway::deps::reqwest::Response| {
        let fixture = &fixture;
        async move {
            assert_eq!(response.status(), 302, "{:?}", login_error(&response));
            whoami(fixture, &session_cookies(&response)).await["role"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(role_of(sign_in(&fixture, &op, "ent", "carol", "carol-password").await).await, "VIEWER");
    assert_eq!(role_of(sign_in(&fixture, &op, "plain", "dave", "dave-password").await).await, "VIEWER");
}

//! Rules on accounts and keys that an attacker with some foothold tried to bend:
//! - an admin's API key could mint admins (create a user with a password, set another admin's
//!   password, change roles) and then sign in as them: keys may not do these, sessions and the
//!   admin secret may;
//! - a forced password change over gRPC accepted the current password as the new one;
//! - usernames with invisible or bidirectional characters, or confusable with an existing one
//!   (`admin\u{200b}`, `\u{202e}admin`, Cyrillic `аdmin`), impersonated other users;
//! - the system user could go through password recovery;
//! - an API key expiry near `i64::MAX` overflowed (a key born expired, a panic in debug);
//! - responses carrying a new key or the user list could be cached by the browser or a proxy.

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, bearer};
use ashgate_testkit::smtp::SmtpServer;
use serde_json::json;
use tonic::Code;

use crate::support::{gateway_login, status_text, whoami};

const KEYS_CANNOT: &str =
    "API keys cannot create users, set passwords or change roles: sign in, or use the admin secret";

async fn admin_key(fx: &IdentityFixture) -> String {
    let admin = fx.admin_token().await;
    let request = pb::CreateApiKeyRequest { name: "admin-key".into(), ..Default::default() };
    fx.keys().create_user_api_key(bearer(request, &admin)).await.unwrap().into_inner().key
}

#[tokio::test]
async fn an_admins_api_key_cannot_mint_admins() {
    let fixture = GatewayFixture::start().await;
    let fx = &fixture.identity;
    let (victim_id, _) = fx.user_with_role("other-admin", pb::Role::Admin).await;
    let (member_id, _) = fx.user_with_role("plain-member", pb::Role::Member).await;
    let user_key = admin_key(fx).await;
    let system_key = fx.system_key("automation").await;
    // A system key is no admin to begin with; an admin's key is, but still may not do these.
    let admin_only = "Only admin or system users can perform this action.";
    for (key, refusal) in [(&user_key, KEYS_CANNOT), (&system_key, admin_only)] {
        // Over REST...
        let create = json!({"user": {"email": "minted@example.com", "username": "minted", "role": "ADMIN",
            "auth_method": "LOCAL", "password": "minted-password-1"}});
        let response = GatewayFixture::client()
            .post(fixture.url("/v1/users"))
            .header("authorization", format!("Bearer {key}"))
            .json(&create)
            .send()
            .await
            .unwrap();
        assert_eq!(status_text(response).await, (403, refusal.into()));
        // ...and over gRPC.
        let create = pb::CreateUserRequest {
            email: "minted@example.com".into(),
            username: "minted".into(),
            role: pb::Role::Admin.into(),
            auth_method: pb::AuthMethod::Local.into(),
            ..Default::default()
        };
        let status = fx.users().create_user(bearer(create, key)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::PermissionDenied, refusal));
        let password = pb::UpdatePasswordRequest {
            user_id: victim_id,
            new_password: "taken-over-1".into(),
            ..Default::default()
        };
        let status = fx.users().update_password(bearer(password, key)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::PermissionDenied, refusal));
        let role = pb::UpdateRoleRequest { user_id: member_id, role: pb::Role::Admin.into() };
        let status = fx.users().update_role(bearer(role, key)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::PermissionDenied, refusal));
    }
    // Nothing changed: the victim still signs in with their password, the member is a member.
    fx.login("other-admin@example.com", "user-password-1").await;
    let member = fx.users().get_user(bearer(pb::GetUserRequest { user_id: member_id }, ADMIN_SECRET)).await;
    assert_eq!(member.unwrap().into_inner().role, i32::from(pb::Role::Member));
    // A session and the admin secret still can.
    let admin = fx.admin_token().await;
    let role = pb::UpdateRoleRequest { user_id: member_id, role: pb::Role::Viewer.into() };
    fx.users().update_role(bearer(role, &admin)).await.unwrap();
    let role = pb::UpdateRoleRequest { user_id: member_id, role: pb::Role::Member.into() };
    fx.users().update_role(bearer(role, ADMIN_SECRET)).await.unwrap();
}

#[tokio::test]
async fn a_forced_password_change_needs_a_new_password() {
    let fx = IdentityFixture::start().await;
    let first = fx.login("admin@localhost", "admin").await;
    assert!(first.password_needs_reset);
    let same = pb::UpdatePasswordRequest {
        user_id: first.user_id,
        new_password: "admin".into(),
        current_password: "admin".into(),
    };
    let status = fx.users().update_password(bearer(same, &first.access_token)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "Choose a password different from the current one.")
    );
    assert!(fx.login("admin@localhost", "admin").await.password_needs_reset, "still forced");
}

#[tokio::test]
async fn usernames_cannot_hide_or_imitate() {
    let fx = IdentityFixture::start().await;
    let admin = fx.admin_token().await;
    let create = |username: &str, email: &str| {
        bearer(
            pb::CreateUserRequest {
                email: email.into(),
                username: username.into(),
                role: pb::Role::Member.into(),
                auth_method: pb::AuthMethod::Local.into(),
                ..Default::default()
            },
            &admin,
        )
    };
    let hidden = "Username must not contain invisible, bidirectional or non-ASCII space characters";
    for (i, name) in ["admin\u{200b}", "\u{202e}admin", "admin\u{feff}", "ad\u{2066}min", "ad\u{00a0}min"]
        .into_iter()
        .enumerate()
    {
        let status =
            fx.users().create_user(create(name, &format!("hidden{i}@example.com"))).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, hidden), "{name:?}");
    }
    let similar = "Username is too similar to an existing username";
    for (i, name) in
        ["\u{0430}dmin", "ADMIN", "adm\u{0456}n", "\u{0430}\u{0501}m\u{0456}n"].into_iter().enumerate()
    {
        let result = fx.users().create_user(create(name, &format!("similar{i}@example.com"))).await;
        let status = result.expect_err(name);
        assert_eq!((status.code(), status.message()), (Code::AlreadyExists, similar), "{name:?}");
    }
    // A rename cannot imitate either; a name of its own is fine, in any script.
    let user = fx.users().create_user(create("Zoë Ångström", "zoe@example.com")).await.unwrap().into_inner();
    let rename = pb::UpdateUsernameRequest { user_id: user.id, username: "\u{0430}dmin".into() };
    let status = fx.users().update_username(bearer(rename, &admin)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::AlreadyExists, similar));
    fx.users().create_user(create("Дмитрий", "dmitry@example.com")).await.unwrap();
}

#[tokio::test]
async fn the_system_user_has_no_password_recovery() {
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    fixture.identity.user_with_role("real", pb::Role::Member).await;
    for email in ["system@localhost", "real@example.com"] {
        let response = GatewayFixture::client()
            .post(fixture.url("/auth/password-reset-email"))
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{email}");
    }
    smtp.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let recipients: Vec<Vec<String>> = smtp.messages().into_iter().map(|m| m.rcpt_tos).collect();
    assert_eq!(recipients, [vec!["real@example.com".to_owned()]], "no reset link for the system user");
}

#[tokio::test]
async fn an_expiry_past_the_year_9999_is_refused_not_overflowed() {
    let fx = IdentityFixture::start().await;
    let admin = fx.admin_token().await;
    let create = |expires_at_ms: i64| {
        bearer(pb::CreateApiKeyRequest { name: "far".into(), expires_at_ms, ..Default::default() }, &admin)
    };
    for expires_at_ms in [i64::MAX, i64::MAX - 999, 253_402_300_800_000] {
        let status = fx.keys().create_user_api_key(create(expires_at_ms)).await.unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, "Expiry must be before the year 10000"),
            "{expires_at_ms}"
        );
    }
    // The last representable day works and the key is not born expired.
    let key = fx.keys().create_user_api_key(create(253_402_300_799_999)).await.unwrap().into_inner().key;
    let principal = fx
        .internal()
        .verify_credential(ashgate_testkit::identity::internal(pb::VerifyCredentialRequest {
            credential: key,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(principal.expires_at_ms, 253_402_300_799_999);
}

#[tokio::test]
async fn authenticated_answers_are_never_cached() {
    let fixture = GatewayFixture::start().await;
    fixture.identity.user_with_role("cached", pb::Role::Admin).await;
    let (access, _) = gateway_login(&fixture, "cached@example.com", "user-password-1").await;
    assert_eq!(whoami(&fixture, &access).await.0, 200);
    let client = GatewayFixture::client();
    let auth = format!("Bearer {access}");
    let key = json!({"data": {"name": "fresh"}});
    let requests = [
        client.post(fixture.url("/v1/system/api_keys")).json(&key),
        client.post(fixture.url("/v1/user/api_keys")).json(&key),
        client.get(fixture.url("/v1/users")),
        client.get(fixture.url("/v1/user")),
        client.get(fixture.url("/v1/user/api_keys")),
        client.get(fixture.url("/v1/projects")),
        client.get(fixture.url("/v1/users?limit=not-a-number")),
    ];
    for request in requests {
        let request = request.header("authorization", &auth).build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        let response = client.execute(request).await.unwrap();
        assert_eq!(
            response.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what} ({})",
            response.status()
        );
    }
}

#[tokio::test]
async fn a_member_learns_nothing_about_keys_that_are_not_theirs() {
    let fx = IdentityFixture::start().await;
    let (_, member) = fx.user_with_role("curious", pb::Role::Member).await;
    let (_, other) = fx.user_with_role("other", pb::Role::Member).await;
    fx.system_key("system").await;
    let theirs = pb::CreateApiKeyRequest { name: "theirs".into(), ..Default::default() };
    let theirs = fx.keys().create_user_api_key(bearer(theirs, &other)).await.unwrap().into_inner();
    let system_id = fx
        .keys()
        .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .api_keys[0]
        .id;
    for id in [system_id, theirs.api_key.unwrap().id, 999_999] {
        let status =
            fx.keys().delete_user_api_key(bearer(pb::DeleteApiKeyRequest { id }, &member)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::NotFound, "API key not found"), "key {id}");
    }
}

/// A victim's inbox and reset link are not anyone's to flood: each request used to send a mail
/// and void the link of the one before, so the link the victim was about to click died. One
/// mail per account per minute now; the answer is the same either way.
#[tokio::test]
async fn reset_mails_to_one_account_are_spaced() {
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    fixture.identity.user_with_role("flooded", pb::Role::Member).await;
    for _ in 0..5 {
        let response = GatewayFixture::client()
            .post(fixture.url("/auth/password-reset-email"))
            .json(&json!({"email": "flooded@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    let link = smtp.wait_for(1).await[0].reset_link().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(smtp.messages().len(), 1, "one mail");
    let token = link.split("token=").nth(1).unwrap();
    let reset = GatewayFixture::client()
        .post(fixture.url("/auth/password-reset"))
        .json(&json!({"token": token, "password": "flooded-new-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204, "the mailed link still works");
}

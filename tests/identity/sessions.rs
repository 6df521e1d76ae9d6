//! Sign-in, refresh rotation and reuse detection, sign-out, expiry, forced password change,
//! and what a password or role change does to sessions.

use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_PASSWORD, IdentityFixture, bearer, internal};
use tonic::Code;

use crate::{fixture, outcome};

async fn verify(fx: &IdentityFixture, credential: &str) -> (Code, String) {
    outcome(
        fx.internal()
            .verify_credential(internal(pb::VerifyCredentialRequest { credential: credential.into() }))
            .await,
    )
}

#[tokio::test]
async fn login_failures_are_indistinguishable() {
    let fx = fixture().await;
    for (email, password) in
        [("admin@localhost", "wrong"), ("nobody@example.com", "admin"), ("system@localhost", "x")]
    {
        let (code, message) = outcome(
            fx.auth().login(pb::LoginRequest { email: email.into(), password: password.into() }).await,
        );
        assert_eq!(
            (code, message.as_str()),
            (Code::Unauthenticated, "Invalid email and/or password"),
            "{email}"
        );
    }
    for (email, password) in [("", "x"), ("admin@localhost", "")] {
        let (code, message) = outcome(
            fx.auth().login(pb::LoginRequest { email: email.into(), password: password.into() }).await,
        );
        assert_eq!((code, message.as_str()), (Code::Unauthenticated, "Email and password required"));
    }
    // Email matching ignores case and surrounding spaces, as Phoenix.
    let pair = fx.login("  ADMIN@localhost ", "admin").await;
    assert!(pair.password_needs_reset);
}

#[tokio::test]
async fn must_reset_user_can_only_change_password() {
    let fx = fixture().await;
    let first = fx.login("admin@localhost", "admin").await;
    assert!(first.password_needs_reset);
    let (code, message) =
        outcome(fx.users().list_users(bearer(pb::ListUsersRequest::default(), &first.access_token)).await);
    assert_eq!(
        (code, message.as_str()),
        (Code::PermissionDenied, "You must change your password before continuing.")
    );
    // Who am I still works, so the page can greet them.
    let me =
        fx.users().get_self(bearer(pb::GetSelfRequest {}, &first.access_token)).await.unwrap().into_inner();
    assert!(me.password_needs_reset);
    let wrong = pb::UpdatePasswordRequest {
        user_id: me.id,
        new_password: "new-pass-1".into(),
        current_password: "nope".into(),
    };
    let (code, message) = outcome(fx.users().update_password(bearer(wrong, &first.access_token)).await);
    assert_eq!((code, message.as_str()), (Code::InvalidArgument, "Current password is incorrect"));
    let short = pb::UpdatePasswordRequest {
        user_id: me.id,
        new_password: "abc".into(),
        current_password: "admin".into(),
    };
    let (code, message) = outcome(fx.users().update_password(bearer(short, &first.access_token)).await);
    assert_eq!(
        (code, message.as_str()),
        (Code::InvalidArgument, "Password must be at least 4 characters long")
    );
    let change = pb::UpdatePasswordRequest {
        user_id: me.id,
        new_password: ADMIN_PASSWORD.into(),
        current_password: "admin".into(),
    };
    let changed = fx.users().update_password(bearer(change, &first.access_token)).await.unwrap().into_inner();
    assert!(!changed.password_needs_reset);
    // The change ended the old session; the old password no longer works.
    assert_eq!(verify(&fx, &first.access_token).await, (Code::Unauthenticated, "Invalid token".into()));
    let (code, _) = outcome(
        fx.auth().login(pb::LoginRequest { email: "admin@localhost".into(), password: "admin".into() }).await,
    );
    assert_eq!(code, Code::Unauthenticated);
    let pair = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    assert!(!pair.password_needs_reset);
    fx.users().list_users(bearer(pb::ListUsersRequest::default(), &pair.access_token)).await.unwrap();
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    // No grace for a second use here (two tabs renewing at once: `tests/security/refresh.rs`).
    let fx = IdentityFixture::start_with(|env| env.with("ASHGATE_REFRESH_REUSE_GRACE_SECONDS", "0")).await;
    fx.admin_token().await;
    let first = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    let second = fx
        .auth()
        .refresh(pb::RefreshRequest { refresh_token: first.refresh_token.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(second.access_token, first.access_token);
    // The rotated-out access token is revoked; the new one works.
    assert_eq!(verify(&fx, &first.access_token).await.0, Code::Unauthenticated);
    assert_eq!(verify(&fx, &second.access_token).await.0, Code::Ok);
    // Replaying the spent refresh token: refused, and the thief's or owner's newer session dies too.
    let (code, message) = outcome(
        fx.auth()
            .refresh(pb::RefreshRequest { refresh_token: first.refresh_token.clone(), ..Default::default() })
            .await,
    );
    assert_eq!((code, message.as_str()), (Code::Unauthenticated, "Invalid refresh token"));
    assert_eq!(verify(&fx, &second.access_token).await, (Code::Unauthenticated, "Invalid token".into()));
    let (code, _) = outcome(
        fx.auth()
            .refresh(pb::RefreshRequest { refresh_token: second.refresh_token, ..Default::default() })
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    // An unrelated session of the same user survives.
    let other = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    assert_eq!(verify(&fx, &other.access_token).await.0, Code::Ok);
}

#[tokio::test]
async fn refresh_errors() {
    let fx = fixture().await;
    fx.admin_token().await;
    let pair = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    let refresh = |token: &str| pb::RefreshRequest { refresh_token: token.into(), ..Default::default() };
    let (code, message) = outcome(fx.auth().refresh(refresh("")).await);
    assert_eq!((code, message.as_str()), (Code::Unauthenticated, "Missing refresh token"));
    // An access token is not a refresh token, and a refresh token is not a credential.
    let (code, message) = outcome(fx.auth().refresh(refresh(&pair.access_token)).await);
    assert_eq!((code, message.as_str()), (Code::Unauthenticated, "Invalid refresh token"));
    assert_eq!(verify(&fx, &pair.refresh_token).await, (Code::Unauthenticated, "Invalid token".into()));
    let (code, _) = outcome(fx.users().get_self(bearer(pb::GetSelfRequest {}, &pair.refresh_token)).await);
    assert_eq!(code, Code::Unauthenticated);
    let (code, message) = outcome(fx.auth().refresh(refresh("garbage")).await);
    assert_eq!((code, message.as_str()), (Code::Unauthenticated, "Invalid refresh token"));
}

#[tokio::test]
async fn tokens_expire_with_their_own_message() {
    // 0.02 min = 1.2 s access tokens, 0.04 min refresh tokens.
    let fx = IdentityFixture::start_with(|env| {
        env.with("PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES", "0.02")
            .with("PHOENIX_REFRESH_TOKEN_EXPIRY_MINUTES", "0.04")
    })
    .await;
    let pair = fx.login("admin@localhost", "admin").await;
    assert_eq!(verify(&fx, &pair.access_token).await.0, Code::Ok);
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(verify(&fx, &pair.access_token).await, (Code::Unauthenticated, "Expired token".into()));
    let (code, message) = outcome(
        fx.auth()
            .refresh(pb::RefreshRequest { refresh_token: pair.refresh_token, ..Default::default() })
            .await,
    );
    assert_eq!((code, message.as_str()), (Code::Unauthenticated, "Expired refresh token"));
}

#[tokio::test]
async fn logout_ends_every_session_of_the_user() {
    let fx = fixture().await;
    fx.admin_token().await;
    let laptop = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    let phone = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    let key = fx.system_key("survives logout").await;
    let out = fx
        .auth()
        .logout(bearer(pb::LogoutRequest::default(), &laptop.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.user_id, phone.user_id);
    assert_eq!(verify(&fx, &laptop.access_token).await.0, Code::Unauthenticated);
    assert_eq!(verify(&fx, &phone.access_token).await.0, Code::Unauthenticated);
    let (code, _) = outcome(
        fx.auth()
            .refresh(pb::RefreshRequest { refresh_token: phone.refresh_token, ..Default::default() })
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    // API keys are not sessions.
    assert_eq!(verify(&fx, &key).await.0, Code::Ok);
    // Logout by refresh token alone (the access cookie already expired), and of nobody.
    let again = fx.login("admin@localhost", ADMIN_PASSWORD).await;
    let out = fx
        .auth()
        .logout(pb::LogoutRequest { refresh_token: again.refresh_token })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.user_id, again.user_id);
    assert_eq!(verify(&fx, &again.access_token).await.0, Code::Unauthenticated);
    let out =
        fx.auth().logout(pb::LogoutRequest { refresh_token: "nonsense".into() }).await.unwrap().into_inner();
    assert_eq!(out.user_id, 0);
}

#[tokio::test]
async fn role_change_and_deletion_end_sessions() {
    let fx = fixture().await;
    let admin = fx.admin_token().await;
    let (member_id, member) = fx.user_with_role("demoted", pb::Role::Member).await;
    let request = pb::UpdateRoleRequest { user_id: member_id, role: pb::Role::Viewer.into() };
    let updated = fx.users().update_role(bearer(request, &admin)).await.unwrap().into_inner();
    assert_eq!(updated.role, i32::from(pb::Role::Viewer));
    assert_eq!(verify(&fx, &member).await.0, Code::Unauthenticated);
    let relogged = fx.login("demoted@example.com", "user-password-1").await;
    let principal = fx
        .internal()
        .verify_credential(internal(pb::VerifyCredentialRequest {
            credential: relogged.access_token.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(principal.role, i32::from(pb::Role::Viewer));
    fx.users().delete_user(bearer(pb::DeleteUserRequest { user_id: member_id }, &admin)).await.unwrap();
    assert_eq!(verify(&fx, &relogged.access_token).await, (Code::Unauthenticated, "Invalid token".into()));
    let (code, message) =
        outcome(fx.users().delete_user(bearer(pb::DeleteUserRequest { user_id: member_id }, &admin)).await);
    assert_eq!((code, message.as_str()), (Code::NotFound, "User not found"));
}

#[tokio::test]
async fn user_rules_are_enforced_with_clear_messages() {
    let fx = fixture().await;
    let admin = fx.admin_token().await;
    let create = |email: &str, username: &str, role: pb::Role| pb::CreateUserRequest {
        email: email.into(),
        username: username.into(),
        role: role.into(),
        auth_method: pb::AuthMethod::Local.into(),
        password: "pass-1234".into(),
        ..Default::default()
    };
    let cases = [
        (
            create("a@example.com", "a", pb::Role::System),
            Code::InvalidArgument,
            "Role SYSTEM cannot be assigned",
        ),
        (
            create("a@example.com", "a", pb::Role::Unspecified),
            Code::InvalidArgument,
            "Role must be ADMIN, MEMBER or VIEWER",
        ),
        (create("not-an-email", "a", pb::Role::Member), Code::InvalidArgument, "Invalid email address"),
        (
            create("a@example.com", "  ", pb::Role::Member),
            Code::InvalidArgument,
            "Username must not be empty",
        ),
        (create("ADMIN@localhost", "fresh", pb::Role::Member), Code::AlreadyExists, "Email already exists"),
        (create("b@example.com", "admin", pb::Role::Member), Code::AlreadyExists, "Username already exists"),
    ];
    for (request, code, message) in cases {
        let got = outcome(fx.users().create_user(bearer(request, &admin)).await);
        assert_eq!(got, (code, message.to_owned()));
    }
    let bad_password = pb::CreateUserRequest {
        password: "has space".into(),
        ..create("c@example.com", "c", pb::Role::Member)
    };
    let got = outcome(fx.users().create_user(bearer(bad_password, &admin)).await);
    assert_eq!(got, (Code::InvalidArgument, "Password must not contain whitespace".to_owned()));
    // Nothing above was created.
    let users = fx
        .users()
        .list_users(bearer(pb::ListUsersRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1, "only the default admin: {users:?}");
    // The default admin and the system user are protected.
    let admin_id = users[0].id;
    let got =
        outcome(fx.users().delete_user(bearer(pb::DeleteUserRequest { user_id: admin_id }, &admin)).await);
    assert_eq!(got, (Code::PermissionDenied, "Cannot delete the default admin or system user".to_owned()));
    let (member_id, _) = fx.user_with_role("other-admin", pb::Role::Admin).await;
    let other_admin = fx.login("other-admin@example.com", "user-password-1").await.access_token;
    let got = outcome(
        fx.users()
            .update_role(bearer(
                pb::UpdateRoleRequest { user_id: admin_id, role: pb::Role::Member.into() },
                &other_admin,
            ))
            .await,
    );
    assert_eq!(
        got,
        (Code::PermissionDenied, "Cannot change the role of the default admin or system user".to_owned())
    );
    let got = outcome(fx.users().get_user(bearer(pb::GetUserRequest { user_id: 999_999 }, &admin)).await);
    assert_eq!(got, (Code::NotFound, "User not found".to_owned()));
    let got = outcome(
        fx.users().list_users(bearer(pb::ListUsersRequest { cursor: "zzz".into(), limit: 0 }, &admin)).await,
    );
    assert_eq!(got, (Code::InvalidArgument, "Invalid cursor".to_owned()));
    // Paging.
    let page = fx
        .users()
        .list_users(bearer(pb::ListUsersRequest { cursor: String::new(), limit: 1 }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.users.len(), 1);
    let next = fx
        .users()
        .list_users(bearer(pb::ListUsersRequest { cursor: page.next_cursor, limit: 1 }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.users[0].id, member_id);
}

#[tokio::test]
async fn strong_password_policy() {
    let fx =
        IdentityFixture::start_with(|env| env.with("PHOENIX_ENABLE_STRONG_PASSWORD_POLICY", "true")).await;
    let first = fx.login("admin@localhost", "admin").await;
    let change = |new: &str| pb::UpdatePasswordRequest {
        user_id: first.user_id,
        new_password: new.into(),
        current_password: "admin".into(),
    };
    let got = outcome(fx.users().update_password(bearer(change("longenough1!"), &first.access_token)).await);
    assert_eq!(
        got,
        (Code::InvalidArgument, "Password must contain at least one uppercase letter".to_owned())
    );
    fx.users().update_password(bearer(change("Longenough1!"), &first.access_token)).await.unwrap();
}

//! First-start seeding and restarts.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, bearer};
use tonic::Code;

use crate::outcome;

#[tokio::test]
async fn restart_with_another_initial_password_changes_nothing() {
    let first =
        IdentityFixture::start_with(|env| env.with("PHOENIX_DEFAULT_ADMIN_INITIAL_PASSWORD", "first-pass"))
            .await;
    first.login("admin@localhost", "first-pass").await;
    let second = first.replica(|env| env.with("PHOENIX_DEFAULT_ADMIN_INITIAL_PASSWORD", "second-pass")).await;
    second.login("admin@localhost", "first-pass").await;
    let got = outcome(
        second
            .auth()
            .login(pb::LoginRequest { email: "admin@localhost".into(), password: "second-pass".into() })
            .await,
    );
    assert_eq!(got.0, Code::Unauthenticated);
    let users = second
        .users()
        .list_users(bearer(pb::ListUsersRequest::default(), ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1, "one default admin, no duplicates: {users:?}");
}

#[tokio::test]
async fn phoenix_admins_are_created_without_a_usable_password() {
    let fx = IdentityFixture::start_with(|env| {
        env.with("PHOENIX_ADMINS", "alice=Alice@Example.com;bob=bob@example.com")
    })
    .await;
    let users = fx
        .users()
        .list_users(bearer(pb::ListUsersRequest::default(), ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .users;
    let names: Vec<(&str, &str, i32, bool)> = users
        .iter()
        .map(|u| (u.username.as_str(), u.email.as_str(), u.role, u.password_needs_reset))
        .collect();
    let admin = i32::from(pb::Role::Admin);
    assert_eq!(
        names,
        [
            ("admin", "admin@localhost", admin, true),
            ("alice", "alice@example.com", admin, true),
            ("bob", "bob@example.com", admin, true)
        ]
    );
    // A restart with the same list adds nobody.
    let again =
        fx.replica(|env| env.with("PHOENIX_ADMINS", "alice=alice@example.com;carol=carol@example.com")).await;
    let count = again
        .users()
        .list_users(bearer(pb::ListUsersRequest::default(), ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .users
        .len();
    assert_eq!(count, 4);
}

#[tokio::test]
async fn system_user_cannot_sign_in_or_be_changed() {
    let fx = IdentityFixture::start().await;
    let got = outcome(
        fx.auth().login(pb::LoginRequest { email: "system@localhost".into(), password: "".into() }).await,
    );
    assert_eq!(got, (Code::Unauthenticated, "Email and password required".into()));
    let system = fx.users().get_self(bearer(pb::GetSelfRequest {}, ADMIN_SECRET)).await.unwrap().into_inner();
    assert_eq!(system.role, i32::from(pb::Role::System));
    let got = outcome(
        fx.users().delete_user(bearer(pb::DeleteUserRequest { user_id: system.id }, ADMIN_SECRET)).await,
    );
    assert_eq!(got, (Code::PermissionDenied, "Cannot delete the default admin or system user".into()));
    let got = outcome(
        fx.users()
            .update_password(bearer(
                pb::UpdatePasswordRequest {
                    user_id: system.id,
                    new_password: "x-123".into(),
                    current_password: String::new(),
                },
                ADMIN_SECRET,
            ))
            .await,
    );
    assert_eq!(got, (Code::PermissionDenied, "The system user cannot be changed".into()));
}

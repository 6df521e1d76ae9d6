//! What happens to credentials already handed out when their owner changes: deletion,
//! demotion, a password change, a replayed refresh token. Every surface (gateway, collector
//! over HTTP and gRPC) follows within a second, through the caches and the revocation stream.
//! identity-svc's side alone is in `tests/identity/sessions.rs`
//! (`role_change_and_deletion_end_sessions`, `refresh_rotates_and_reuse_revokes_the_family`).

use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::{ADMIN_SECRET, bearer};

use crate::support::{
    eventually, gateway_login, grpc_export, http_export, member_with_key, status_text, whoami,
};

/// Revocations reach every verifier within this (the design's bound).
const REVOCATION_BOUND: Duration = Duration::from_secs(1);

/// A deleted user's session and API key stop working everywhere, though both were cached.
#[tokio::test]
async fn deleted_users_credentials_die_everywhere() {
    let fixture = GatewayFixture::start().await;
    let (id, access, key) = member_with_key(&fixture, "leaver").await;
    // Warm every cache.
    assert_eq!(whoami(&fixture, &access).await.0, 200);
    assert_eq!(whoami(&fixture, &key).await.0, 200);
    assert_eq!(http_export(&fixture.collector.traces_url(), &key, 10).await.0, 200);
    assert_eq!(grpc_export(fixture.collector.grpc_addr, &key, 11).await, tonic::Code::Ok);

    let response = GatewayFixture::client()
        .delete(fixture.url(&format!("/v1/users/{}", global_user_id(id))))
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{:?}", status_text(response).await);

    let gone = eventually(REVOCATION_BOUND, || async {
        whoami(&fixture, &access).await.0 == 401
            && whoami(&fixture, &key).await.0 == 401
            && http_export(&fixture.collector.traces_url(), &key, 12).await.0 == 401
            && grpc_export(fixture.collector.grpc_addr, &key, 13).await == tonic::Code::Unauthenticated
    })
    .await;
    assert!(gone, "a deleted user's credentials still worked after {REVOCATION_BOUND:?}");
    assert_eq!(whoami(&fixture, &access).await, (401, "Invalid token".to_owned()));
    assert_eq!(
        http_export(&fixture.collector.traces_url(), &key, 14).await,
        (401, "Invalid token".to_owned())
    );
}

/// A member's key, cached as a member's, is a viewer's key once the member is demoted: exports
/// are refused (viewers may not write) within a second, and reads still work.
#[tokio::test]
async fn a_demoted_users_key_loses_its_rights() {
    let fixture = GatewayFixture::start().await;
    let (id, _, key) = member_with_key(&fixture, "demotee").await;
    assert_eq!(http_export(&fixture.collector.traces_url(), &key, 20).await.0, 200);
    assert_eq!(grpc_export(fixture.collector.grpc_addr, &key, 21).await, tonic::Code::Ok);
    assert_eq!(http_export(&fixture.url("/v1/traces"), &key, 22).await.0, 200);

    let request = pb::UpdateRoleRequest { user_id: id, role: pb::Role::Viewer.into() };
    fixture.identity.users().update_role(bearer(request, ADMIN_SECRET)).await.unwrap();

    let demoted = eventually(REVOCATION_BOUND, || async {
        http_export(&fixture.collector.traces_url(), &key, 23).await.0 == 403
            && grpc_export(fixture.collector.grpc_addr, &key, 24).await == tonic::Code::PermissionDenied
            && http_export(&fixture.url("/v1/traces"), &key, 25).await.0 == 403
    })
    .await;
    assert!(demoted, "a demoted user's key could still write after {REVOCATION_BOUND:?}");
    let (status, message) = http_export(&fixture.collector.traces_url(), &key, 26).await;
    assert_eq!(status, 403);
    assert!(!message.is_empty(), "403 without a message");
    // Reading is what a viewer may do.
    assert_eq!(whoami(&fixture, &key).await.0, 200);
    // And creating keys is not (API keys never create keys).
    let response = GatewayFixture::client()
        .post(fixture.url("/v1/user/api_keys"))
        .header("authorization", format!("Bearer {key}"))
        .json(&serde_json::json!({"data": {"name": "escalate"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// After a password change, every session of the user ends (access and refresh tokens, on
/// every device); API keys stay.
#[tokio::test]
async fn a_password_change_ends_every_session() {
    let fixture = GatewayFixture::start().await;
    let (id, _, key) = member_with_key(&fixture, "changer").await;
    let (laptop_access, laptop_refresh) =
        gateway_login(&fixture, "changer@example.com", "user-password-1").await;
    let (phone_access, _) = gateway_login(&fixture, "changer@example.com", "user-password-1").await;
    assert_eq!(whoami(&fixture, &laptop_access).await.0, 200);
    assert_eq!(whoami(&fixture, &phone_access).await.0, 200);

    let change = pb::UpdatePasswordRequest {
        user_id: id,
        new_password: "another-password-2".into(),
        current_password: "user-password-1".into(),
    };
    fixture.identity.users().update_password(bearer(change, &phone_access)).await.unwrap();

    let ended = eventually(REVOCATION_BOUND, || async {
        whoami(&fixture, &laptop_access).await.0 == 401 && whoami(&fixture, &phone_access).await.0 == 401
    })
    .await;
    assert!(ended, "sessions survived a password change");
    let refreshed = GatewayFixture::client()
        .post(fixture.url("/auth/refresh"))
        .header("cookie", format!("phoenix-refresh-token={laptop_refresh}"))
        .header("origin", fixture.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(refreshed).await, (401, "Invalid refresh token".to_owned()));
    // The old password no longer signs in; the new one does; the key was not touched.
    let old = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .json(&serde_json::json!({"email": "changer@example.com", "password": "user-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(old).await, (401, "Invalid email and/or password".to_owned()));
    gateway_login(&fixture, "changer@example.com", "another-password-2").await;
    assert_eq!(whoami(&fixture, &key).await.0, 200);
}

/// A refresh cookie replayed after rotation (stolen and used by someone else) is refused and
/// ends the session it was rotated into, over HTTP as identity-svc does over gRPC.
#[tokio::test]
async fn a_replayed_refresh_cookie_ends_the_session_family() {
    // A second use within the grace window is a second tab (`tests/security/refresh.rs`); the
    // replay here comes after it.
    let fixture = GatewayFixture::start_configured(
        true,
        |env| env.with("ASHGATE_REFRESH_REUSE_GRACE_SECONDS", "1"),
        |env| env,
    )
    .await;
    fixture.identity.user_with_role("replayed", pb::Role::Member).await;
    let (_, refresh) = gateway_login(&fixture, "replayed@example.com", "user-password-1").await;
    let rotate = |refresh: String| {
        let fixture = &fixture;
        async move {
            GatewayFixture::client()
                .post(fixture.url("/auth/refresh"))
                .header("cookie", format!("phoenix-refresh-token={refresh}"))
                .header("origin", fixture.origin())
                .send()
                .await
                .unwrap()
        }
    };
    let first = rotate(refresh.clone()).await;
    assert_eq!(first.status(), 204);
    let new_access = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix("phoenix-access-token=").map(|r| r.split(';').next().unwrap_or("").to_owned())
        })
        .unwrap();
    assert_eq!(whoami(&fixture, &new_access).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status_text(rotate(refresh).await).await, (401, "Invalid refresh token".to_owned()));
    let revoked =
        eventually(REVOCATION_BOUND, || async { whoami(&fixture, &new_access).await.0 == 401 }).await;
    assert!(revoked, "the session the stolen token was rotated into survived the replay");
}

/// Phoenix's REST user ids are GlobalIDs: base64 of `User:<id>`.
fn global_user_id(id: i64) -> String {
    ashgate_testkit::gateway::deps::ashgate_gateway::global_id::encode("User", id)
}

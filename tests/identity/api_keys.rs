//! API keys as credentials: kinds, owners' current roles, expiry, deletion, forgeries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, bearer, internal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::{Code, Request};

use crate::{fixture, outcome};

async fn verify(fx: &IdentityFixture, credential: &str) -> Result<pb::Principal, (Code, String)> {
    fx.internal()
        .verify_credential(internal(pb::VerifyCredentialRequest { credential: credential.into() }))
        .await
        .map(|r| r.into_inner())
        .map_err(|s| (s.code(), s.message().to_owned()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn key_request(name: &str) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest { name: name.into(), ..Default::default() }
}

#[tokio::test]
async fn kinds_roles_and_owners() {
    let fx = fixture().await;
    let admin = fx.admin_token().await;
    let system =
        fx.keys().create_system_api_key(bearer(key_request("ci"), &admin)).await.unwrap().into_inner();
    let meta = system.api_key.clone().unwrap();
    assert!(meta.system);
    assert_eq!(meta.name, "ci");
    let principal = verify(&fx, &system.key).await.unwrap();
    assert_eq!(principal.kind, i32::from(pb::CredentialKind::SystemApiKey));
    assert_eq!(principal.role, i32::from(pb::Role::System), "system keys are not admins");
    assert_eq!(principal.credential_id, meta.id);
    // A system key is not an admin: it cannot manage users.
    let got = outcome(fx.users().list_users(bearer(pb::ListUsersRequest::default(), &system.key)).await);
    assert_eq!(got.0, Code::PermissionDenied);

    let (viewer_id, viewer) = fx.user_with_role("viewer", pb::Role::Viewer).await;
    let viewer_key = fx
        .keys()
        .create_user_api_key(bearer(key_request("notebook"), &viewer))
        .await
        .unwrap()
        .into_inner()
        .key;
    let principal = verify(&fx, &viewer_key).await.unwrap();
    assert_eq!(
        (principal.kind, principal.role, principal.user_id),
        (i32::from(pb::CredentialKind::UserApiKey), i32::from(pb::Role::Viewer), viewer_id)
    );
    // The key acts with the owner's *current* role.
    fx.users()
        .update_role(bearer(
            pb::UpdateRoleRequest { user_id: viewer_id, role: pb::Role::Member.into() },
            &admin,
        ))
        .await
        .unwrap();
    assert_eq!(verify(&fx, &viewer_key).await.unwrap().role, i32::from(pb::Role::Member));

    // Listings.
    let own = fx.keys().list_own_api_keys(bearer(pb::ListOwnApiKeysRequest {}, &viewer)).await;
    assert_eq!(
        own.map(|_| ()).unwrap_err().code(),
        Code::Unauthenticated,
        "the role change ended that session"
    );
    let all = fx
        .keys()
        .list_all_user_api_keys(bearer(pb::ListAllUserApiKeysRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.api_keys.iter().map(|k| (k.name.as_str(), k.username.as_str(), k.system)).collect::<Vec<_>>(),
        [("notebook", "viewer", false)]
    );
    let systems = fx
        .keys()
        .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(systems.api_keys.len(), 1);
    assert!(!systems.api_keys[0].name.is_empty());
}

#[tokio::test]
async fn system_key_survives_its_creator_user_keys_do_not_survive_theirs() {
    let fx = fixture().await;
    let admin = fx.admin_token().await;
    let (creator_id, creator) = fx.user_with_role("second-admin", pb::Role::Admin).await;
    let system_key = fx
        .keys()
        .create_system_api_key(bearer(key_request("outlives"), &creator))
        .await
        .unwrap()
        .into_inner()
        .key;
    let user_key =
        fx.keys().create_user_api_key(bearer(key_request("dies"), &creator)).await.unwrap().into_inner().key;
    fx.users().delete_user(bearer(pb::DeleteUserRequest { user_id: creator_id }, &admin)).await.unwrap();
    assert!(verify(&fx, &system_key).await.is_ok());
    assert_eq!(verify(&fx, &user_key).await.unwrap_err(), (Code::Unauthenticated, "Invalid token".into()));
}

#[tokio::test]
async fn expiry_must_be_future_and_is_enforced() {
    let fx = fixture().await;
    let request =
        pb::CreateApiKeyRequest { name: "past".into(), expires_at_ms: now_ms() - 1000, ..Default::default() };
    let got = outcome(fx.keys().create_system_api_key(bearer(request, ADMIN_SECRET)).await);
    assert_eq!(got, (Code::InvalidArgument, "Expiry must be in the future".into()));
    let got = outcome(fx.keys().create_system_api_key(bearer(key_request("  "), ADMIN_SECRET)).await);
    assert_eq!(got, (Code::InvalidArgument, "Name must not be empty".into()));
    let request = pb::CreateApiKeyRequest {
        name: "soon".into(),
        expires_at_ms: now_ms() + 1_500,
        ..Default::default()
    };
    let created = fx.keys().create_system_api_key(bearer(request, ADMIN_SECRET)).await.unwrap().into_inner();
    let principal = verify(&fx, &created.key).await.unwrap();
    assert!(principal.cache_until_ms <= principal.expires_at_ms, "never cached past expiry");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(verify(&fx, &created.key).await.unwrap_err(), (Code::Unauthenticated, "Expired token".into()));
}

#[tokio::test]
async fn deleted_keys_and_forgeries_are_invalid() {
    let fx = fixture().await;
    let created = fx
        .keys()
        .create_system_api_key(bearer(key_request("doomed"), ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner();
    assert!(verify(&fx, &created.key).await.is_ok());
    let id = created.api_key.unwrap().id;
    fx.keys().delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await.unwrap();
    assert_eq!(verify(&fx, &created.key).await.unwrap_err(), (Code::Unauthenticated, "Invalid token".into()));
    let got =
        outcome(fx.keys().delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await);
    assert_eq!(got, (Code::NotFound, "API key not found".into()));

    let live = fx.system_key("live").await;
    let parts: Vec<&str> = live.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let header_rs = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let tampered_payload = URL_SAFE_NO_PAD.encode(payload.replace("ApiKey:", "ApiKey:1").as_bytes());
    let other_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::from_str::<serde_json::Value>(&payload).unwrap(),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-0123456789abcdefghij"),
    )
    .unwrap();
    let forgeries = [
        format!("{header_none}.{}.", parts[1]),
        format!("{header_rs}.{}.{}", parts[1], parts[2]),
        format!("{}.{tampered_payload}.{}", parts[0], parts[2]),
        other_secret,
        "not-a-token".to_owned(),
        String::new(),
        format!("{live}x"),
    ];
    for forged in forgeries {
        assert_eq!(
            verify(&fx, &forged).await.unwrap_err(),
            (Code::Unauthenticated, "Invalid token".into()),
            "{forged}"
        );
    }
    assert!(verify(&fx, &live).await.is_ok());
}

#[tokio::test]
async fn internal_rpcs_refuse_outsiders() {
    let fx = fixture().await;
    let key = fx.system_key("k").await;
    let got = outcome(
        fx.internal()
            .verify_credential(Request::new(pb::VerifyCredentialRequest { credential: key.clone() }))
            .await,
    );
    assert_eq!(got, (Code::PermissionDenied, "This RPC is only for ashgate services".into()));
    let mut wrong = Request::new(pb::VerifyCredentialRequest { credential: key });
    wrong
        .metadata_mut()
        .insert("x-ashgate-internal-token", "internal-token-0123456789abcdefghijklX".parse().unwrap());
    assert_eq!(outcome(fx.internal().verify_credential(wrong).await).0, Code::PermissionDenied);
    let got = fx.internal().watch_revocations(Request::new(pb::WatchRevocationsRequest {})).await;
    assert_eq!(got.map(|_| ()).unwrap_err().code(), Code::PermissionDenied);
}

#[tokio::test]
async fn last_used_is_recorded() {
    let fx = fixture().await;
    let created = fx
        .keys()
        .create_system_api_key(bearer(key_request("used"), ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.api_key.unwrap().last_used_at_ms, 0);
    verify(&fx, &created.key).await.unwrap();
    let mut last_used = 0;
    for _ in 0..50 {
        let keys = fx
            .keys()
            .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
            .await
            .unwrap()
            .into_inner();
        last_used = keys.api_keys[0].last_used_at_ms;
        if last_used > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last_used > now_ms() - 60_000, "last_used_at recorded: {last_used}");
}

//! Rotating `PHOENIX_SECRET` (issue 17), end to end through the gateway and the collector: a
//! credential signed with a secret listed in `ASHGATE_PREVIOUS_SECRETS` keeps working (and a
//! session renewed moves to the new secret); once the secret is dropped from the list, what
//! it signed is refused on every surface with the exact 401 message, so the rotation is real.
//! identity-level checks (unknown `kid`, tokens from before key ids) are in
//! `tests/identity/rotation.rs`; the rolling restart of a fleet in `tests/fleet/rotation.rs`.

use ashgate_identity::secret::Secret;
use ashgate_identity::token::secret_id;
use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use ashgate_testkit::identity::{IdentityFixture, SECRET, bearer};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::support::{grpc_export, http_export, whoami, whoami_cookie};
use crate::tokens::refused_everywhere;

/// The secret the gateway's identity-svc signs with after the rotation.
const NEW: &str = "rotated-secret-0123456789abcdefghijkl";

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap_or_default().to_owned()
}

/// A member's session and user API key, issued by `replica` (whatever secret it signs with).
async fn credentials_from(replica: &IdentityFixture, name: &str) -> (pb::TokenPair, String) {
    let (_, access) = replica.user_with_role(name, pb::Role::Member).await;
    let request = pb::CreateApiKeyRequest { name: format!("{name}-key"), ..Default::default() };
    let key = replica.keys().create_user_api_key(bearer(request, &access)).await.unwrap().into_inner().key;
    let pair = replica.login(&format!("{name}@example.com"), "user-password-1").await;
    (pair, key)
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_secret_still_verifies_and_a_renewed_session_moves_to_the_new_one() {
    let fixture = GatewayFixture::start_configured(
        true,
        |env| env.with("PHOENIX_SECRET", NEW).with("ASHGATE_PREVIOUS_SECRETS", SECRET),
        |env| env,
    )
    .await;
    // A replica still on the old configuration, on the same database, issued these.
    let old = fixture.identity.replica(|env| env).await;
    let (pair, key) = credentials_from(&old, "rotation-kept").await;
    assert_eq!(kid_of(&key), secret_id(&Secret::new(SECRET)));
    assert_eq!(whoami(&fixture, &key).await.0, 200, "API key signed with the previous secret");
    assert_eq!(whoami(&fixture, &pair.access_token).await.0, 200);
    assert_eq!(whoami_cookie(&fixture, &pair.access_token).await.0, 200);
    assert_eq!(http_export(&fixture.collector.traces_url(), &key, 1).await.0, 200);
    assert_eq!(grpc_export(fixture.collector.grpc_addr, &key, 2).await, tonic::Code::Ok);

    // The browser renews its session through the gateway: the new pair is signed with the new
    // secret, so the session no longer depends on the old one.
    let renewed = GatewayFixture::client()
        .post(fixture.url("/auth/refresh"))
        .header("cookie", format!("phoenix-refresh-token={}", pair.refresh_token))
        .header("origin", fixture.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 204);
    let access = cookie(&renewed, "phoenix-access-token").expect("a new access cookie");
    let refresh = cookie(&renewed, "phoenix-refresh-token").expect("a new refresh cookie");
    assert_eq!(kid_of(&access), secret_id(&Secret::new(NEW)));
    assert_eq!(kid_of(&refresh), secret_id(&Secret::new(NEW)));
    assert_eq!(whoami_cookie(&fixture, &access).await.0, 200);
    // The old configuration cannot check what the new secret signed: this is why a roll first
    // adds the new secret to every replica's list (docs/production.md, "Rotating the secret").
    let checked_by_old = old
        .internal()
        .verify_credential(ashgate_testkit::identity::internal(pb::VerifyCredentialRequest {
            credential: access,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (checked_by_old.code(), checked_by_old.message()),
        (tonic::Code::Unauthenticated, "Invalid token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_a_dropped_secret_are_refused_everywhere() {
    // The gateway's identity-svc signs with the new secret and no longer lists the old one.
    let fixture =
        GatewayFixture::start_configured(true, |env| env.with("PHOENIX_SECRET", NEW), |env| env).await;
    let old = fixture.identity.replica(|env| env).await;
    let (pair, key) = credentials_from(&old, "rotation-dropped").await;
    // Genuine, live rows: the old configuration still accepts them.
    let accepted = old
        .internal()
        .verify_credential(ashgate_testkit::identity::internal(pb::VerifyCredentialRequest {
            credential: key.clone(),
        }))
        .await;
    assert!(accepted.is_ok(), "{accepted:?}");
    refused_everywhere(&fixture, "API key of a dropped secret", &key, "Invalid token").await;
    refused_everywhere(&fixture, "session of a dropped secret", &pair.access_token, "Invalid token").await;
    let renewed = GatewayFixture::client()
        .post(fixture.url("/auth/refresh"))
        .header("cookie", format!("phoenix-refresh-token={}", pair.refresh_token))
        .header("origin", fixture.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 401);
    assert_eq!(renewed.text().await.unwrap(), "Invalid refresh token");
    // What the new secret signs works; the same claims under a `kid` naming no configured
    // secret do not, though the signature is the current secret's.
    let (_, new_key) = credentials_from(&fixture.identity, "rotation-new").await;
    assert_eq!(whoami(&fixture, &new_key).await.0, 200);
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(new_key.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("ffffffffffffffff".into());
    let unknown_kid =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(NEW.as_bytes()))
            .unwrap();
    refused_everywhere(&fixture, "a kid naming no configured secret", &unknown_kid, "Invalid token").await;
}

//! Forged, confused and misused tokens, end to end: each is refused by the gateway (bearer and
//! cookie) and by the collector (OTLP/HTTP and OTLP/gRPC) with the exact status and message.
//! identity-svc's own checks of a few of these are in `tests/identity/api_keys.rs`
//! (`deleted_keys_and_forgeries_are_invalid`) and `tests/identity/sessions.rs`
//! (`refresh_errors`, `tokens_expire_with_their_own_message`).

use std::time::{SystemTime, UNIX_EPOCH};

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::ashgate_gateway::config::Secret;
use ashgate_testkit::gateway::deps::ashgate_gateway::oauth2::state::{StateClaims, StateSigner};
use ashgate_testkit::identity::{ADMIN_SECRET, INTERNAL_TOKEN, SECRET};
use ashgate_testkit::smtp::SmtpServer;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::support::{grpc_export, http_export, member_with_key, whoami, whoami_cookie};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `header.payload.signature` where the signature is HMAC-SHA256 under `key`, whatever `alg`
/// the header claims (the algorithm-confusion attack uses the HMAC secret as the "public key").
fn sign_as(alg: &str, claims: &Value, key: &[u8]) -> String {
    let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
    let payload = b64(claims.to_string().as_bytes());
    let message = format!("{header}.{payload}");
    let algorithm = match alg {
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        _ => Algorithm::HS256,
    };
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(key), algorithm).unwrap();
    format!("{message}.{signature}")
}

/// Asserts every surface refuses `credential` with 401 / UNAUTHENTICATED and `message`.
pub(crate) async fn refused_everywhere(
    fixture: &GatewayFixture,
    what: &str,
    credential: &str,
    message: &str,
) {
    assert_eq!(whoami(fixture, credential).await, (401, message.to_owned()), "{what}: gateway bearer");
    if credential.bytes().all(|b| b.is_ascii_graphic()) && !credential.contains(';') {
        assert_eq!(
            whoami_cookie(fixture, credential).await,
            (401, message.to_owned()),
            "{what}: gateway cookie"
        );
    }
    let http = http_export(&fixture.collector.traces_url(), credential, 1).await;
    assert_eq!(http, (401, message.to_owned()), "{what}: collector OTLP/HTTP");
    let gateway_traces = http_export(&fixture.url("/v1/traces"), credential, 1).await;
    assert_eq!(gateway_traces, (401, message.to_owned()), "{what}: gateway /v1/traces");
    assert_eq!(
        grpc_export(fixture.collector.grpc_addr, credential, 1).await,
        tonic::Code::Unauthenticated,
        "{what}: gRPC"
    );
}

/// alg none, another secret, RS256/ES256/HS512 headers signed with the HMAC secret, a signed
/// token past `exp`, one not yet valid (`nbf`), tampered payloads: none gets in anywhere.
#[tokio::test]
async fn forged_and_confused_tokens_are_refused_everywhere() {
    let fixture = GatewayFixture::start().await;
    let (_, access, key) = member_with_key(&fixture, "forgery-target").await;
    // Both genuine credentials work first.
    assert_eq!(whoami(&fixture, &access).await.0, 200);
    assert_eq!(whoami(&fixture, &key).await.0, 200);
    let spans_before = fixture.collector.span_count().await;

    for genuine in [&access, &key] {
        let claims = claims_of(genuine);
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut expired = claims.clone();
        expired["exp"] = json!(now() - 60);
        let mut not_yet = claims.clone();
        not_yet["nbf"] = json!(now() + 3_600);
        let mut other_row = claims.clone();
        let jti = claims["jti"].as_str().unwrap();
        let (kind, id) = jti.split_once(':').unwrap();
        other_row["jti"] = json!(format!("{kind}:{}", id.parse::<i64>().unwrap() + 1));
        let mut promoted = claims.clone();
        promoted["role"] = json!("ADMIN");
        let secret = SECRET.as_bytes();
        let cases: Vec<(&str, String, &str)> = vec![
            ("alg none", format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]), "Invalid token"),
            (
                "alg None, no signature",
                format!("{}.{}", b64(br#"{"alg":"None"}"#), parts[1]),
                "Invalid token",
            ),
            (
                "HS256 with another secret",
                sign_as("HS256", &claims, b"another-secret-0123456789abcdefghij"),
                "Invalid token",
            ),
            ("RS256 header, HMAC secret as key", sign_as("RS256", &claims, secret), "Invalid token"),
            ("ES256 header, HMAC secret as key", sign_as("ES256", &claims, secret), "Invalid token"),
            ("HS512 with the right secret", sign_as("HS512", &claims, secret), "Invalid token"),
            ("signed, past exp", sign_as("HS256", &expired, secret), "Expired token"),
            ("signed, nbf in the future", sign_as("HS256", &not_yet, secret), "Invalid token"),
            (
                "payload of another row, old signature",
                format!("{}.{}.{}", parts[0], b64(other_row.to_string().as_bytes()), parts[2]),
                "Invalid token",
            ),
            (
                "extra claim, old signature",
                format!("{}.{}.{}", parts[0], b64(promoted.to_string().as_bytes()), parts[2]),
                "Invalid token",
            ),
            ("another row, right secret, wrong nonce", sign_as("HS256", &other_row, secret), "Invalid token"),
            ("signature cut", format!("{}.{}.{}", parts[0], parts[1], &parts[2][..10]), "Invalid token"),
            ("four segments", format!("{genuine}.x"), "Invalid token"),
        ];
        for (what, forged, message) in cases {
            refused_everywhere(&fixture, what, &forged, message).await;
        }
    }
    assert_eq!(fixture.collector.span_count().await, spans_before, "no forged export was stored");
    // The genuine credentials still work: nothing above locked or revoked them.
    assert_eq!(whoami(&fixture, &access).await.0, 200);
    assert_eq!(http_export(&fixture.collector.traces_url(), &key, 2).await.0, 200);
}

/// A refresh token, a password-reset token and an OAuth2 `state` are never credentials, though
/// each is genuine and signed by us.
#[tokio::test]
async fn refresh_reset_and_oauth_state_tokens_are_not_credentials() {
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    let (_, access, _) = member_with_key(&fixture, "misuser").await;
    let (_, refresh) =
        crate::support::gateway_login(&fixture, "misuser@example.com", "user-password-1").await;

    let response = GatewayFixture::client()
        .post(fixture.url("/auth/password-reset-email"))
        .header("referer", fixture.url("/forgot-password"))
        .json(&json!({"email": "misuser@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let link = smtp.wait_for(1).await[0].reset_link().unwrap();
    let reset = link.split("token=").nth(1).unwrap().to_owned();
    assert!(claims_of(&reset)["jti"].as_str().unwrap().starts_with("PasswordResetToken:"));

    let signer = StateSigner::new(Some(&Secret::new(INTERNAL_TOKEN)));
    let state = signer.sign(&StateClaims {
        random: "r".into(),
        idp: "test".into(),
        origin: fixture.origin(),
        return_url: Some("/settings".into()),
        expires_at: now() + 600,
    });

    for (what, token) in
        [("refresh token", &refresh), ("password-reset token", &reset), ("OAuth2 state", &state)]
    {
        refused_everywhere(&fixture, what, token, "Invalid token").await;
    }
    // As a refresh token, an access token or a reset token is refused too.
    for token in [&access, &reset] {
        let response = GatewayFixture::client()
            .post(fixture.url("/auth/refresh"))
            .header("cookie", format!("phoenix-refresh-token={token}"))
            .header("origin", fixture.origin())
            .send()
            .await
            .unwrap();
        assert_eq!(crate::support::status_text(response).await, (401, "Invalid refresh token".to_owned()));
    }
    // The admin secret is a credential only when it is exactly the secret.
    refused_everywhere(&fixture, "admin secret with a suffix", &format!("{ADMIN_SECRET}x"), "Invalid token")
        .await;
    refused_everywhere(
        &fixture,
        "admin secret cut",
        &ADMIN_SECRET[..ADMIN_SECRET.len() - 1],
        "Invalid token",
    )
    .await;
    // None of that spent the reset link: it still works, once.
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/password-reset"))
        .json(&json!({"token": reset, "password": "brand-new-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

//! identity-svc over TLS with client certificates (mTLS): a service presenting a certificate
//! signed by identity's client CA is an internal caller without `ASHGATE_INTERNAL_TOKEN`; one
//! without a certificate, or speaking plain HTTP/2, gets nothing.

use std::path::Path;

use ashgate_identity_client::{AuthError, CredentialKind, CredentialVerifier, VerifierConfig};
use ashgate_proto::identity as pb;
use ashgate_proto::identity::api_key_service_client::ApiKeyServiceClient;
use ashgate_runtime::tls::{ClientTls, endpoint};
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, bearer};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf(vec!["127.0.0.1".into(), "localhost".into()]),
        client: leaf(vec!["collector.internal".into()]),
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

fn verifier(url: &str, tls: ClientTls) -> CredentialVerifier {
    CredentialVerifier::connect(VerifierConfig {
        identity_urls: vec![url.to_owned()],
        internal_token: None,
        max_cache_ttl: std::time::Duration::from_secs(60),
        negative_cache_ttl: std::time::Duration::from_secs(2),
        cache_capacity: 100,
        tls,
    })
    .unwrap()
}

#[tokio::test]
async fn mutual_tls_replaces_the_internal_token() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        write(dir.path(), "server.pem", &pki.server.0),
        write(dir.path(), "server.key", &pki.server.1),
        write(dir.path(), "ca.pem", &pki.ca),
    );
    let fx = IdentityFixture::start_with(|env| {
        env.with("ASHGATE_IDENTITY_TLS_CERT_FILE", cert.clone())
            .with("ASHGATE_IDENTITY_TLS_KEY_FILE", key.clone())
            .with("ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE", ca.clone())
    })
    .await;
    let url = format!("https://{}", fx.addr);
    let with_cert = ClientTls::from_pem(
        Some(pki.ca.clone().into_bytes()),
        Some((pki.client.0.clone().into_bytes(), pki.client.1.clone().into_bytes())),
    );

    // The admin secret creates a key over the mutually authenticated channel.
    let channel = endpoint(&url, &with_cert).unwrap().connect().await.unwrap();
    let request = pb::CreateApiKeyRequest { name: "over tls".into(), ..Default::default() };
    let key = ApiKeyServiceClient::new(channel)
        .create_system_api_key(bearer(request, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .key;

    // A verifier with a client certificate and no internal token is an internal caller.
    let trusted = verifier(&url, with_cert);
    let principal = trusted.verify_bearer(&key).await.unwrap();
    assert_eq!(principal.kind, CredentialKind::SystemApiKey);

    // Trusting the server is not enough: without a client certificate the handshake fails.
    let anonymous = verifier(&url, ClientTls::from_pem(Some(pki.ca.clone().into_bytes()), None));
    assert_eq!(anonymous.verify_bearer(&key).await.unwrap_err(), AuthError::Unavailable);
    // Nor does plain HTTP/2 reach it.
    let plain = verifier(&format!("http://{}", fx.addr), ClientTls::default());
    assert_eq!(plain.verify_bearer(&key).await.unwrap_err(), AuthError::Unavailable);
}

#[tokio::test]
async fn tls_without_client_certificates_still_needs_the_token() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) =
        (write(dir.path(), "server.pem", &pki.server.0), write(dir.path(), "server.key", &pki.server.1));
    let fx = IdentityFixture::start_with(|env| {
        env.with("ASHGATE_IDENTITY_TLS_CERT_FILE", cert.clone())
            .with("ASHGATE_IDENTITY_TLS_KEY_FILE", key.clone())
    })
    .await;
    let url = format!("https://{}", fx.addr);
    let trust = ClientTls::from_pem(Some(pki.ca.clone().into_bytes()), None);
    let channel = endpoint(&url, &trust).unwrap().connect().await.unwrap();
    let request = pb::CreateApiKeyRequest { name: "k".into(), ..Default::default() };
    let key = ApiKeyServiceClient::new(channel)
        .create_system_api_key(bearer(request, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .key;
    // No token, no client certificate: identity refuses its internal RPC, so nothing verifies.
    assert_eq!(verifier(&url, trust.clone()).verify_bearer(&key).await.unwrap_err(), AuthError::Unavailable);
    // With the token over TLS it works.
    let with_token = CredentialVerifier::connect(VerifierConfig {
        internal_token: Some(ashgate_testkit::identity::INTERNAL_TOKEN.into()),
        identity_urls: vec![url],
        max_cache_ttl: std::time::Duration::from_secs(60),
        negative_cache_ttl: std::time::Duration::from_secs(2),
        cache_capacity: 100,
        tls: trust,
    })
    .unwrap();
    assert!(with_token.verify_bearer(&key).await.is_ok());
}

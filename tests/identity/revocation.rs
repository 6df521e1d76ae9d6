//! Revocations reach every verifier within a second: through the in-process bus on one
//! replica, and through Redis between replicas. Losing Redis or the stream never lets a
//! revoked credential back in.

use std::time::{Duration, Instant};

use ashgate_identity_client::{AuthError, CredentialVerifier};
use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_PASSWORD, ADMIN_SECRET, IdentityFixture, TEST_REDIS_ENV, bearer};

fn redis_url() -> Option<String> {
    std::env::var(TEST_REDIS_ENV).ok().filter(|v| !v.is_empty())
}

/// Polls until `credential` is rejected; returns how long that took.
async fn until_rejected(verifier: &CredentialVerifier, credential: &str) -> Duration {
    let start = Instant::now();
    loop {
        match verifier.verify_bearer(credential).await {
            Err(AuthError::Invalid) => return start.elapsed(),
            other => assert!(start.elapsed() < Duration::from_secs(1), "still accepted after 1 s: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the verifier follows the revocation stream (it starts lazily).
async fn following(verifier: &CredentialVerifier) {
    for _ in 0..200 {
        if verifier.is_following_revocations() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("verifier never followed the revocation stream");
}

#[tokio::test]
async fn cached_key_is_evicted_on_deletion() {
    let fx = IdentityFixture::start().await;
    let verifier = fx.verifier();
    following(&verifier).await;
    let created = fx
        .keys()
        .create_system_api_key(bearer(
            pb::CreateApiKeyRequest { name: "k".into(), ..Default::default() },
            ADMIN_SECRET,
        ))
        .await
        .unwrap()
        .into_inner();
    let principal = verifier.verify_bearer(&created.key).await.unwrap();
    assert_eq!(principal.kind, pb::CredentialKind::SystemApiKey);
    verifier.verify_bearer(&created.key).await.unwrap();
    assert_eq!(verifier.stats().hits, 1, "the second verification came from the cache");
    fx.keys()
        .delete_system_api_key(bearer(
            pb::DeleteApiKeyRequest { id: created.api_key.unwrap().id },
            ADMIN_SECRET,
        ))
        .await
        .unwrap();
    until_rejected(&verifier, &created.key).await;
}

#[tokio::test]
async fn negative_cache_absorbs_a_flood_of_one_bad_key() {
    let fx = IdentityFixture::start().await;
    let verifier = fx.verifier();
    for _ in 0..100 {
        assert_eq!(verifier.verify_bearer("bad-key").await.unwrap_err(), AuthError::Invalid);
    }
    let stats = verifier.stats();
    assert_eq!((stats.misses, stats.negative_hits), (1, 99));
    let mut headers = http::HeaderMap::new();
    assert_eq!(verifier.verify_headers(&headers).await.unwrap_err(), AuthError::Missing);
    headers.insert("authorization", "Basic abc".parse().unwrap());
    assert_eq!(verifier.verify_headers(&headers).await.unwrap_err(), AuthError::Missing);
}

#[tokio::test]
async fn across_replicas_through_redis() {
    let Some(_) = redis_url() else {
        eprintln!("ASHGATE_TEST_REDIS_URL unset: the in-process path is covered by the other tests");
        return;
    };
    let a = IdentityFixture::start().await;
    let b = a.replica(|env| env).await;
    let verifier = b.verifier();
    following(&verifier).await;
    // Redis subscriptions come up asynchronously.
    for fx in [&a, &b] {
        for _ in 0..200 {
            if fx.identity.revocations().is_reliable() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(fx.identity.revocations().is_reliable());
    }
    // Key deletion on A, verifier on B.
    let key = a.system_key("replicated").await;
    verifier.verify_bearer(&key).await.unwrap();
    let id = a
        .keys()
        .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .api_keys[0]
        .id;
    a.keys().delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await.unwrap();
    let delay = until_rejected(&verifier, &key).await;
    eprintln!("key deletion seen through replica B after {delay:?}");
    // Logout on A.
    a.admin_token().await;
    let session = a.login("admin@localhost", ADMIN_PASSWORD).await;
    verifier.verify_bearer(&session.access_token).await.unwrap();
    a.auth().logout(bearer(pb::LogoutRequest::default(), &session.access_token)).await.unwrap();
    until_rejected(&verifier, &session.access_token).await;
    // User deletion on A.
    let (user_id, token) = a.user_with_role("leaver", pb::Role::Member).await;
    verifier.verify_bearer(&token).await.unwrap();
    a.users().delete_user(bearer(pb::DeleteUserRequest { user_id }, ADMIN_SECRET)).await.unwrap();
    until_rejected(&verifier, &token).await;
}

#[tokio::test]
async fn redis_down_never_lets_a_revoked_key_back_in() {
    // Replica B's Redis is a closed port: it can never hear A's revocations, so it must not
    // cache at all (and say so to its verifiers) while A works normally.
    let a = IdentityFixture::start().await;
    let b = a.replica(|env| env.with("ASHGATE_REDIS_URL", "redis://127.0.0.1:1")).await;
    assert!(!b.identity.revocations().is_reliable());
    let verifier = b.verifier();
    // A deaf replica is nobody's source of revocations: it refuses the stream, and its
    // verifier counts the stream as down (answers kept at most a second).
    for _ in 0..30 {
        assert!(!verifier.is_following_revocations(), "a replica without Redis serves no revocation stream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let key = a.system_key("k").await;
    let principal = b
        .internal()
        .verify_credential(ashgate_testkit::identity::internal(pb::VerifyCredentialRequest {
            credential: key.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(principal.cache_until_ms <= ashgate_identity::identity::now_ms(), "no caching while deaf");
    verifier.verify_bearer(&key).await.unwrap();
    let id = a
        .keys()
        .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .api_keys[0]
        .id;
    a.keys().delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await.unwrap();
    // B reads the database, the truth: rejected at once.
    assert_eq!(verifier.verify_bearer(&key).await.unwrap_err(), AuthError::Invalid);
}

#[tokio::test]
async fn verifier_without_its_stream_keeps_answers_at_most_a_second() {
    let fx = IdentityFixture::start().await;
    let verifier = fx.verifier();
    following(&verifier).await;
    let key = fx.system_key("k").await;
    verifier.verify_bearer(&key).await.unwrap();
    // identity-svc goes away: the stream breaks, the cache is dropped, nothing is let in
    // unverified; requests fail as unavailable (retryable), never as accepted.
    fx.stop().await;
    for _ in 0..200 {
        if !verifier.is_following_revocations() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!verifier.is_following_revocations());
    assert_eq!(verifier.verify_bearer(&key).await.unwrap_err(), AuthError::Unavailable);
}

/// identity-svc's own cache forgets a revoked credential before the revoking call returns: an
/// answer right after `DeleteSystemApiKey` (with no chance for a background task to run, on
/// this single-threaded runtime) must already be "Invalid token".
#[tokio::test]
async fn identity_forgets_a_revoked_key_before_the_call_returns() {
    let fx = IdentityFixture::start().await;
    let key = fx.system_key("short-lived").await;
    let identity = &fx.identity;
    identity.verify_credential(&key).await.unwrap();
    let admin = identity.verify_credential(ADMIN_SECRET).await.unwrap();
    let keys = identity.list_system_api_keys(&admin).await.unwrap();
    let caller = ashgate_identity::identity::Caller { principal: admin, client_addr: None };
    identity.delete_system_api_key(&caller, keys[0].id).await.unwrap();
    let refused = identity.verify_credential(&key).await.unwrap_err();
    assert_eq!(refused.to_string(), "Invalid token");
}

/// A revocation stream that goes silent (its replica's host paused or cut off without a FIN)
/// used to be trusted until HTTP/2 keepalive noticed, about ten seconds, while answers stayed
/// cached for the whole TTL. identity-svc now beats on every stream twice a second, and a
/// verifier that hears nothing for a second and a half counts its stream as down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_revocation_stream_is_down_within_two_seconds() {
    let fx = IdentityFixture::start().await;
    let proxy = ashgate_testkit::faults::TcpProxy::start(fx.addr).await.unwrap();
    let verifier = fx.verifier_with(|mut config| {
        config.identity_urls = vec![format!("http://{}", proxy.addr())];
        config
    });
    following(&verifier).await;
    proxy.set(ashgate_testkit::faults::Mode::Stall);
    let started = Instant::now();
    while verifier.is_following_revocations() {
        assert!(started.elapsed() < Duration::from_millis(2500), "a silent stream is still trusted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

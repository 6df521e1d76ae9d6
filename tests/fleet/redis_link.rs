//! One identity replica loses its Redis link while the other keeps it. The replica that lost it
//! hears no other replica's revocations; it used to send one flush and keep its revocation
//! stream open, so a verifier following it cached answers from the healthy replica whose
//! revocations then reached it through no one: a deleted key could keep working for the whole
//! cache lifetime (`ASHGATE_VERIFY_CACHE_SECONDS`, up to an hour). Now such a replica ends its
//! streams and refuses new ones until its subscription is back, so verifiers follow a healthy
//! replica (or count their stream as down) and the one-second promise holds.
//!
//! A revocation made *on* the replica cut off from Redis reaches the others through the
//! database's record of revocations (it used to reach nobody until their caches expired).
//!
//! In process: two identity replicas on one database and the machine's Redis (the second
//! through a fault proxy), and verifiers as collector-svc and the gateway use them.

use std::time::{Duration, Instant};

use ashgate_identity_client::AuthError;
use ashgate_proto::identity as pb;
use ashgate_testkit::faults::{Mode, TcpProxy};
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, TEST_REDIS_ENV, bearer, internal};
use futures::StreamExt as _;

const BOUND: Duration = Duration::from_secs(1);

fn redis_url() -> String {
    std::env::var(TEST_REDIS_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

async fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_redis_is_nobodys_source_of_revocations() {
    let redis = redis_url();
    let host_port = redis.trim_start_matches("redis://").split('/').next().unwrap();
    let upstream: std::net::SocketAddr =
        host_port.parse().expect("redis://<ip>:<port> in ASHGATE_TEST_REDIS_URL");
    let proxy = TcpProxy::start(upstream).await.unwrap();
    let healthy = IdentityFixture::start_with(|env| env.with("ASHGATE_REDIS_URL", redis.clone())).await;
    let proxied = format!("redis://{}", proxy.addr());
    let cut = healthy.replica(|env| env.with("ASHGATE_REDIS_URL", proxied)).await;
    wait_until(Duration::from_secs(5), "both replicas subscribed", || {
        healthy.identity.revocations().is_reliable() && cut.identity.revocations().is_reliable()
    })
    .await;

    // A verifier's stream on the replica about to be cut off.
    let mut stream = cut
        .internal()
        .watch_revocations(internal(pb::WatchRevocationsRequest {}))
        .await
        .unwrap()
        .into_inner();
    proxy.set(Mode::Down);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return Some(status.code()),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream of a replica that lost Redis ends");
    assert_eq!(ended, Some(tonic::Code::Unavailable));
    let refused =
        cut.internal().watch_revocations(internal(pb::WatchRevocationsRequest {})).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "no new stream while cut off");

    // Verifiers over both replicas: whichever they follow, a key deleted on the healthy replica
    // is refused everywhere within a second.
    for round in 0..4 {
        let key = healthy.system_key(&format!("round-{round}")).await;
        let verifier = healthy.verifier_with(|mut config| {
            config.identity_urls = vec![healthy.url(), cut.url()];
            config
        });
        // Warm the cache with answers from either replica.
        for _ in 0..6 {
            assert!(verifier.verify_bearer(&key).await.is_ok(), "round {round}: the key works");
        }
        let keys = healthy
            .keys()
            .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
            .await
            .unwrap()
            .into_inner()
            .api_keys;
        let id = keys.iter().find(|k| k.name == format!("round-{round}")).unwrap().id;
        healthy
            .keys()
            .delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET))
            .await
            .unwrap();
        tokio::time::sleep(BOUND).await;
        for _ in 0..6 {
            assert_eq!(
                verifier.verify_bearer(&key).await.err(),
                Some(AuthError::Invalid),
                "round {round}: the deleted key is refused within {BOUND:?}"
            );
        }
    }

    // A revocation made on the cut-off replica reaches the healthy one (and its verifiers)
    // through the database: Redis cannot carry it.
    let key = healthy.system_key("deleted-on-the-cut-replica").await;
    let verifier = healthy.verifier();
    for _ in 0..3 {
        assert!(verifier.verify_bearer(&key).await.is_ok());
    }
    let id = healthy
        .keys()
        .list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET))
        .await
        .unwrap()
        .into_inner()
        .api_keys
        .into_iter()
        .find(|k| k.name == "deleted-on-the-cut-replica")
        .unwrap()
        .id;
    cut.keys().delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await.unwrap();
    tokio::time::sleep(BOUND).await;
    assert_eq!(verifier.verify_bearer(&key).await.err(), Some(AuthError::Invalid), "within {BOUND:?}");
    let status = healthy.auth().authenticate(bearer(pb::AuthenticateRequest {}, &key)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // Back on Redis, the replica serves revocations again.
    proxy.set(Mode::Forward);
    wait_until(Duration::from_secs(10), "the replica subscribed again", || {
        cut.identity.revocations().is_reliable()
    })
    .await;
    assert!(cut.internal().watch_revocations(internal(pb::WatchRevocationsRequest {})).await.is_ok());
}

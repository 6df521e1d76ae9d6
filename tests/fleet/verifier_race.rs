//! A verifier follows the revocation stream of one identity replica and asks any replica to
//! verify. Right after a revocation, the replica it asks may not have heard of it yet (replicas
//! hear each other through Redis, a few milliseconds behind): the fleet test caught a collector
//! caching such a stale answer and accepting a deleted key for the whole cache lifetime (60 s).
//! Here a fake identity replica plays both parts deterministically: its stream announces the
//! revocation while its answers are still stale.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ashgate_identity_client::{AuthError, CredentialVerifier, VerifierConfig};
use ashgate_proto::identity as pb;
use ashgate_proto::identity::internal_service_server::{InternalService, InternalServiceServer};
use futures::Stream;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

const KEY_ID: i64 = 42;

/// An identity replica that has not heard of the revocation until `heard` turns true.
struct LaggingReplica {
    heard: Arc<AtomicBool>,
    events: broadcast::Sender<pb::RevocationEvent>,
}

#[tonic::async_trait]
impl InternalService for LaggingReplica {
    async fn verify_credential(
        &self,
        _: Request<pb::VerifyCredentialRequest>,
    ) -> Result<Response<pb::Principal>, Status> {
        if self.heard.load(Ordering::Acquire) {
            return Err(Status::unauthenticated("Invalid token"));
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        Ok(Response::new(pb::Principal {
            user_id: 1,
            kind: pb::CredentialKind::SystemApiKey.into(),
            role: pb::Role::System.into(),
            cache_until_ms: now + 60_000,
            credential_id: KEY_ID,
            ..Default::default()
        }))
    }

    type WatchRevocationsStream = Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send>>;

    async fn watch_revocations(
        &self,
        _: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let events = self.events.subscribe();
        let stream = futures::stream::unfold(events, |mut events| async move {
            let event = events.recv().await.ok()?;
            Some((Ok(event), events))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn complete_o_auth2_sign_in(
        &self,
        _: Request<pb::CompleteOAuth2SignInRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

#[tokio::test]
async fn a_stale_answer_right_after_a_revocation_is_not_cached() {
    let heard = Arc::new(AtomicBool::new(false));
    let (events, _) = broadcast::channel(16);
    let replica = LaggingReplica { heard: heard.clone(), events: events.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(InternalServiceServer::new(replica))
            .serve_with_incoming(tokio_stream_of(listener)),
    );
    let verifier = CredentialVerifier::connect(VerifierConfig {
        identity_urls: vec![format!("http://{addr}")],
        internal_token: None,
        max_cache_ttl: Duration::from_secs(60),
        negative_cache_ttl: Duration::from_secs(2),
        cache_capacity: 100,
        tls: Default::default(),
    })
    .unwrap();
    let started = Instant::now();
    while !verifier.is_following_revocations() {
        assert!(started.elapsed() < Duration::from_secs(10), "the verifier never followed the stream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Verified once, then answered from the cache.
    verifier.verify_bearer("the-key").await.unwrap();
    verifier.verify_bearer("the-key").await.unwrap();
    assert_eq!((verifier.stats().misses, verifier.stats().hits), (1, 1));

    // The key is revoked: the stream says so, and the cached answer goes.
    let revoked = pb::RevocationEvent {
        seq: 1,
        target: Some(pb::revocation_event::Target::Credential(pb::RevokedCredential {
            kind: pb::CredentialKind::UserApiKey.into(),
            id: KEY_ID,
        })),
    };
    events.send(revoked).unwrap();
    while verifier.stats().misses == 1 {
        assert!(started.elapsed() < Duration::from_secs(10), "the revocation never evicted the key");
        verifier.verify_bearer("the-key").await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The replica asked has not heard yet and still says valid: that answer must not be kept...
    verifier.verify_bearer("the-key").await.unwrap();
    assert_eq!(verifier.stats().misses, 3, "a stale answer about a just-revoked key was cached");
    // ...so once it has heard, the key is refused at once.
    heard.store(true, Ordering::Release);
    assert_eq!(verifier.verify_bearer("the-key").await.unwrap_err(), AuthError::Invalid);
}

/// The listener as the incoming-connection stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

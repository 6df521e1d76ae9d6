//! Revocations between identity replicas across a Redis restart, in-process on a private
//! redis-server: the first revocation published after Redis comes back must reach the other
//! replica (it used to be lost on the publisher's stale connection, leaving the other replica's
//! verifiers trusting a deleted key for up to the cache TTL).

use std::time::{Duration, Instant};

use ashgate_identity::revocation::{Revocation, RevocationBus};
use ashgate_testkit::fleet::PrivateRedis;

async fn wait_reliable(buses: &[&RevocationBus], reliable: bool) {
    let started = Instant::now();
    while buses.iter().any(|bus| bus.is_reliable() != reliable) {
        assert!(started.elapsed() < Duration::from_secs(10), "replicas never became reliable={reliable}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next revocation other than a flush, within `limit`.
async fn next_targeted(
    events: &mut tokio::sync::broadcast::Receiver<Revocation>,
    limit: Duration,
) -> Option<Revocation> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(Revocation::Flush)) => {}
            Ok(Ok(revocation)) => return Some(revocation),
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_published_right_after_a_redis_restart_reaches_the_other_replica() {
    let mut redis = tokio::task::spawn_blocking(PrivateRedis::start).await.unwrap().unwrap();
    let publisher = RevocationBus::with_redis(&redis.url(), "restart").unwrap();
    let listener = RevocationBus::with_redis(&redis.url(), "restart").unwrap();
    wait_reliable(&[&publisher, &listener], true).await;
    let mut events = listener.subscribe();
    publisher.publish(Revocation::ApiKey(1));
    assert_eq!(next_targeted(&mut events, Duration::from_secs(2)).await, Some(Revocation::ApiKey(1)));

    // Redis restarts; both replicas notice and resubscribe. The publisher has not published in
    // between, so its publishing connection is the dead one of the old server.
    redis.kill();
    wait_reliable(&[&publisher, &listener], false).await;
    tokio::task::block_in_place(|| redis.start_server()).unwrap();
    wait_reliable(&[&publisher, &listener], true).await;

    let mut events = listener.subscribe();
    publisher.publish(Revocation::ApiKey(2));
    assert_eq!(
        next_targeted(&mut events, Duration::from_secs(2)).await,
        Some(Revocation::ApiKey(2)),
        "the first revocation after the restart must reach the other replica"
    );
}

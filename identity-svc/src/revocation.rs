//! Revocations: published by whoever revokes, delivered in order to every verifier.
//!
//! In one process they travel over a tokio broadcast channel. Between identity replicas they
//! travel over Redis pub/sub. A replica that cannot be sure it hears every revocation (Redis
//! configured but its subscription is down) says so: [`RevocationBus::is_reliable`] turns false,
//! subscribers get [`Revocation::Flush`], and verifiers stop caching until it is back, so losing
//! Redis costs speed, never correctness (the database stays the truth).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use tokio::sync::broadcast;

use crate::token::random_token;

/// What was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// One access token.
    AccessToken(i64),
    /// One API key.
    ApiKey(i64),
    /// Everything cached about this user (logout, password or role change, deletion).
    User(i64),
    /// Everything cached about anyone: the publisher may have missed revocations.
    Flush,
}

impl Revocation {
    /// The wire form (`a:<id>`, `k:<id>`, `u:<id>`, `f:0`), as Redis and the table carry it.
    pub fn encode(self) -> String {
        match self {
            Revocation::AccessToken(id) => format!("a:{id}"),
            Revocation::ApiKey(id) => format!("k:{id}"),
            Revocation::User(id) => format!("u:{id}"),
            Revocation::Flush => "f:0".to_owned(),
        }
    }

    /// Parses the wire form.
    pub fn decode(text: &str) -> Option<Self> {
        let (tag, id) = text.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        match tag {
            "a" => Some(Revocation::AccessToken(id)),
            "k" => Some(Revocation::ApiKey(id)),
            "u" => Some(Revocation::User(id)),
            "f" => Some(Revocation::Flush),
            _ => None,
        }
    }
}

/// How long a revocation is retried when Redis refuses it. Longer than a subscriber takes to
/// notice a dead connection (heartbeat 500 ms + 800 ms): if Redis stays down that long, every
/// other replica has flushed its caches and stopped caching by then.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(3);

/// Fan-out of revocations to local subscribers, and to other replicas through Redis.
#[derive(Clone)]
pub struct RevocationBus {
    local: broadcast::Sender<Revocation>,
    inner: Arc<Inner>,
}

struct Inner {
    /// Tags our own Redis messages so we do not deliver them twice.
    replica: String,
    redis: Option<redis::aio::ConnectionManager>,
    /// `<namespace>:revocations`.
    channel: String,
    reliable: AtomicBool,
    /// Bumped on every delivered revocation; caches compare it to avoid re-inserting an answer
    /// read from the database before a revocation that overtook it.
    epoch: AtomicU64,
}

impl RevocationBus {
    /// A bus for one process (no Redis).
    pub fn local() -> Self {
        let (local, _) = broadcast::channel(4096);
        let inner = Inner {
            replica: random_token(9),
            redis: None,
            channel: String::new(),
            reliable: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
        };
        Self { local, inner: Arc::new(inner) }
    }

    /// A bus shared with other replicas through Redis at `url`, on `<namespace>:revocations`.
    /// Starts unreliable until the subscription is up; never fails because Redis is down (it
    /// keeps retrying).
    pub fn with_redis(url: &str, namespace: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (local, _) = broadcast::channel(4096);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let manager = redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let inner = Inner {
            replica: random_token(9),
            redis: Some(manager),
            channel: format!("{namespace}:revocations"),
            reliable: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        };
        let bus = Self { local, inner: Arc::new(inner) };
        tokio::spawn(bus.clone().follow_redis(client));
        Ok(bus)
    }

    /// Delivers a revocation here and (best effort) to every other replica.
    pub fn publish(&self, revocation: Revocation) {
        self.deliver(revocation);
        if let Some(redis) = &self.inner.redis {
            let message = format!("{}|{}", self.inner.replica, revocation.encode());
            tokio::spawn(publish_to_redis(redis.clone(), self.inner.channel.clone(), message));
        }
    }

    /// Delivers a revocation read from the database's record here only (the replica that made
    /// it published it to Redis already, if it could).
    pub fn deliver_recorded(&self, revocation: Revocation) {
        self.deliver(revocation);
    }

    /// A new subscriber; it sees every revocation delivered from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.local.subscribe()
    }

    /// Whether this replica hears every revocation (always, without Redis).
    pub fn is_reliable(&self) -> bool {
        self.inner.reliable.load(Ordering::Acquire)
    }

    /// Changes whenever a revocation is delivered (see [`Inner::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    fn deliver(&self, revocation: Revocation) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        // No receivers is fine: nobody caches anything yet.
        let _ = self.local.send(revocation);
    }

    fn set_reliable(&self, reliable: bool) {
        let was = self.inner.reliable.swap(reliable, Ordering::AcqRel);
        if was && !reliable {
            tracing::warn!("Redis revocation channel lost: caches flushed and disabled until it is back");
            self.deliver(Revocation::Flush);
        } else if !was && reliable {
            tracing::info!("Redis revocation channel up");
            // Revocations published while we were not subscribed are lost to us, and an answer
            // read from the database before one of them may be about to be cached (here or by
            // a verifier): a flush makes every such cache insert lose its race.
            self.deliver(Revocation::Flush);
        }
    }

    /// Keeps a Redis subscription up, relaying other replicas' revocations locally.
    async fn follow_redis(self, client: redis::Client) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.follow_once(&client).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => tracing::debug!(error = %e, "Redis subscription failed"),
            }
            self.set_reliable(false);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn follow_once(&self, client: &redis::Client) -> redis::RedisResult<()> {
        let pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
            .await
            .map_err(|_| redis::RedisError::from(std::io::Error::other("connect timed out")))??;
        let (mut sink, mut stream) = pubsub.split();
        sink.subscribe(&self.inner.channel).await?;
        self.set_reliable(true);
        let mut heartbeat = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let Ok(payload) = message.get_payload::<String>() else { continue };
                    let Some((replica, body)) = payload.split_once('|') else { continue };
                    if replica == self.inner.replica {
                        continue;
                    }
                    if let Some(revocation) = Revocation::decode(body) {
                        self.deliver(revocation);
                    }
                }
                _ = heartbeat.tick() => {
                    // A silent dead connection must not look healthy for long.
                    match tokio::time::timeout(Duration::from_millis(800), sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        _ => return Err(redis::RedisError::from(std::io::Error::other("Redis ping failed"))),
                    }
                }
            }
        }
    }
}

/// Publishes one message, retrying failures for [`PUBLISH_RETRY_FOR`]: the connection manager
/// reconnects after an error (e.g. on the stale connection to a Redis that restarted), and a
/// revocation the other replicas never hear would stay in their caches for up to the cache TTL.
async fn publish_to_redis(mut redis: redis::aio::ConnectionManager, channel: String, message: String) {
    let deadline = tokio::time::Instant::now() + PUBLISH_RETRY_FOR;
    let mut backoff = Duration::from_millis(25);
    for attempt in 1u32.. {
        match redis.publish::<_, _, ()>(&channel, &message).await {
            Ok(()) => {
                if attempt > 1 {
                    tracing::debug!(attempt, "published a revocation to Redis");
                }
                return;
            }
            Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                tracing::debug!(error = %e, "could not publish a revocation to Redis; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not publish a revocation to Redis");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        for r in [Revocation::AccessToken(3), Revocation::ApiKey(9), Revocation::User(1), Revocation::Flush] {
            assert_eq!(Revocation::decode(&r.encode()), Some(r));
        }
        assert_eq!(Revocation::decode("x:1"), None);
        assert_eq!(Revocation::decode("a:nope"), None);
    }
}

//! Verifying credentials through identity-svc with a cache that identity-svc keeps honest.
//!
//! Positive answers are cached under the SHA-256 of the credential (never the credential
//! itself) until the earliest of: the credential's expiry, identity's `cache_until`, and the
//! configured maximum. Every revocation identity-svc streams evicts the matching entries at
//! once. While the stream is down the cache is emptied and answers are kept for at most one
//! second, so a revocation is never missed for longer than that. A small negative cache stops
//! a flood of one bad credential from becoming a flood of RPCs.
//!
//! The stream comes from one identity replica; the others hear a revocation through Redis a
//! little later. An answer about a just-revoked credential or user is therefore not cached for
//! a second after the revocation: the replica that gave it may not have heard yet.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ashgate_proto::identity::internal_service_client::InternalServiceClient;
use ashgate_proto::identity::revocation_event::Target;
use ashgate_proto::identity::{self as pb, CredentialKind, Role};
use futures::StreamExt;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

use crate::bearer::parse_bearer;
use crate::error::{AuthError, ClientError};
use crate::principal::Principal;
use ashgate_runtime::env::{ConfigError, Env};

/// How a verifier reaches identity-svc and how long it may trust an answer.
#[derive(Clone)]
pub struct VerifierConfig {
    /// identity-svc replicas (`http://host:port`); requests are balanced, the stream fails over.
    pub identity_urls: Vec<String>,
    /// `ASHGATE_INTERNAL_TOKEN`.
    pub internal_token: Option<String>,
    /// The longest an answer is cached (`ASHGATE_VERIFY_CACHE_SECONDS`, 60).
    pub max_cache_ttl: Duration,
    /// How long a rejection is remembered (2 s).
    pub negative_cache_ttl: Duration,
    /// Entries kept at most.
    pub cache_capacity: u64,
    /// For `https://` identity URLs: the CA to trust and this service's client certificate.
    pub tls: ashgate_runtime::tls::ClientTls,
}

impl std::fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The internal token is a credential: never printed.
        f.debug_struct("VerifierConfig")
            .field("identity_urls", &self.identity_urls)
            .field("internal_token", &self.internal_token.as_ref().map(|_| "***"))
            .field("max_cache_ttl", &self.max_cache_ttl)
            .field("negative_cache_ttl", &self.negative_cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("tls", &self.tls)
            .finish()
    }
}

impl VerifierConfig {
    /// `ASHGATE_IDENTITY_URL` (comma list; default `http://127.0.0.1:50051`),
    /// `ASHGATE_INTERNAL_TOKEN`, `ASHGATE_VERIFY_CACHE_SECONDS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let urls = env.string("ASHGATE_IDENTITY_URL").unwrap_or_else(|| "http://127.0.0.1:50051".into());
        let identity_urls: Vec<String> =
            urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        for url in &identity_urls {
            if Endpoint::from_str(url).is_err()
                || !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::new(
                    "ASHGATE_IDENTITY_URL",
                    format!("{url:?} is not an http(s):// URL"),
                ));
            }
        }
        if identity_urls.is_empty() {
            return Err(ConfigError::new("ASHGATE_IDENTITY_URL", "must name at least one identity-svc URL"));
        }
        Ok(Self {
            identity_urls,
            internal_token: env.string("ASHGATE_INTERNAL_TOKEN"),
            max_cache_ttl: Duration::from_secs(env.u64_in("ASHGATE_VERIFY_CACHE_SECONDS", 60, 0, 3_600)?),
            negative_cache_ttl: Duration::from_secs(2),
            cache_capacity: 100_000,
            tls: ashgate_runtime::tls::ClientTls::from_env(env)?,
        })
    }
}

/// Hit/miss counters, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answered from the cache.
    pub hits: u64,
    /// Asked identity-svc.
    pub misses: u64,
    /// Rejected from the negative cache.
    pub negative_hits: u64,
}

/// Verifies credentials; cheap to clone (all clones share one cache and one stream).
#[derive(Clone)]
pub struct CredentialVerifier {
    inner: Option<Arc<Inner>>,
}

type Key = [u8; 32];

#[derive(Clone)]
struct Cached {
    principal: Principal,
    until: Instant,
}

struct Inner {
    client: InternalServiceClient<Channel>,
    internal_token: Option<MetadataValue<tonic::metadata::Ascii>>,
    positive: Cache<Key, Cached>,
    negative: Cache<Key, AuthError>,
    max_ttl: Duration,
    /// Targets revoked less than [`SETTLE`] ago: answers about them are not cached.
    recently_revoked: Cache<Revoked, ()>,
    /// Nothing is cached before this instant (ms after `started`): a flush just happened.
    settled_after_ms: AtomicU64,
    started: Instant,
    stream_up: AtomicBool,
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    negative_hits: AtomicU64,
}

/// Cache lifetime while the revocation stream is down.
const DEGRADED_TTL: Duration = Duration::from_secs(1);

/// How long after a revocation answers about its target are not cached: time enough for every
/// identity replica to hear it through Redis (a replica whose Redis link is slower than this
/// declares itself unreliable and stops offering cache lifetimes anyway).
const SETTLE: Duration = Duration::from_secs(1);

/// What a revocation named, for [`Inner::recently_revoked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Revoked {
    Credential { id: i64, access: bool },
    User(i64),
}

impl CredentialVerifier {
    /// A verifier for identity-svc at `config.identity_urls`. Connects lazily and starts
    /// following the revocation stream (needs a tokio runtime).
    pub fn connect(config: VerifierConfig) -> Result<Self, ClientError> {
        let endpoints = config
            .identity_urls
            .iter()
            .map(|url| {
                ashgate_runtime::tls::endpoint(url, &config.tls).map(|e| {
                    e.connect_timeout(Duration::from_secs(1))
                        .timeout(Duration::from_secs(3))
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(5))
                        .keep_alive_timeout(Duration::from_secs(5))
                        .keep_alive_while_idle(true)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError(format!("bad identity URL: {e}")))?;
        let channel = match endpoints.as_slice() {
            [] => return Err(ClientError("no identity URL".into())),
            [one] => one.connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        let internal_token = config
            .internal_token
            .as_deref()
            .map(MetadataValue::try_from)
            .transpose()
            .map_err(|_| ClientError("ASHGATE_INTERNAL_TOKEN is not valid metadata".into()))?;
        let inner = Arc::new(Inner {
            client: InternalServiceClient::new(channel),
            internal_token,
            positive: Cache::builder()
                .max_capacity(config.cache_capacity)
                .time_to_live(config.max_cache_ttl.max(DEGRADED_TTL))
                .support_invalidation_closures()
                .build(),
            negative: Cache::builder()
                .max_capacity(config.cache_capacity / 10 + 1)
                .time_to_live(config.negative_cache_ttl)
                .build(),
            max_ttl: config.max_cache_ttl,
            recently_revoked: Cache::builder().max_capacity(100_000).time_to_live(SETTLE).build(),
            settled_after_ms: AtomicU64::new(0),
            started: Instant::now(),
            stream_up: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            negative_hits: AtomicU64::new(0),
        });
        tokio::spawn(follow_revocations(Arc::downgrade(&inner)));
        Ok(Self { inner: Some(inner) })
    }

    /// Authentication disabled: every request is [`Principal::anonymous`].
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Whether this verifier checks anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether the revocation stream is live (the cache is then trusted up to its TTL).
    pub fn is_following_revocations(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.stream_up.load(Ordering::Acquire))
    }

    /// Verifies a bearer credential (without the `Bearer ` scheme).
    pub async fn verify_bearer(&self, credential: &str) -> Result<Principal, AuthError> {
        let Some(inner) = &self.inner else { return Ok(Principal::anonymous()) };
        inner.verify(credential).await
    }

    /// Verifies the `authorization` header or metadata (name and scheme in any case).
    pub async fn verify_headers(&self, headers: &http::HeaderMap) -> Result<Principal, AuthError> {
        if self.inner.is_none() {
            return Ok(Principal::anonymous());
        }
        let credential = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_bearer)
            .ok_or(AuthError::Missing)?;
        self.verify_bearer(credential).await
    }

    /// Cache counters since start.
    pub fn stats(&self) -> CacheStats {
        self.inner.as_ref().map_or_else(CacheStats::default, |i| CacheStats {
            hits: i.hits.load(Ordering::Relaxed),
            misses: i.misses.load(Ordering::Relaxed),
            negative_hits: i.negative_hits.load(Ordering::Relaxed),
        })
    }
}

impl Inner {
    async fn verify(&self, credential: &str) -> Result<Principal, AuthError> {
        if credential.len() > 4096 {
            return Err(AuthError::Invalid);
        }
        let key: Key = Sha256::digest(credential.as_bytes()).into();
        if let Some(cached) = self.positive.get(&key).await {
            if cached.until > Instant::now() {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(cached.principal);
            }
            self.positive.invalidate(&key).await;
        }
        if let Some(error) = self.negative.get(&key).await {
            self.negative_hits.fetch_add(1, Ordering::Relaxed);
            return Err(error);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let answer = self.ask(credential).await;
        match answer {
            Ok((principal, until)) => {
                if let Some(until) = until.filter(|_| !self.is_settling(&principal)) {
                    self.positive.insert(key, Cached { principal: principal.clone(), until }).await;
                    // A revocation that arrived while we asked may concern this very answer.
                    if self.epoch.load(Ordering::Acquire) != epoch {
                        self.positive.invalidate(&key).await;
                    }
                }
                Ok(principal)
            }
            Err(error @ (AuthError::Invalid | AuthError::Expired)) => {
                self.negative.insert(key, error).await;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// One VerifyCredential RPC: the principal and until when it may be cached (if at all).
    async fn ask(&self, credential: &str) -> Result<(Principal, Option<Instant>), AuthError> {
        let mut request = Request::new(pb::VerifyCredentialRequest { credential: credential.to_owned() });
        if let Some(token) = &self.internal_token {
            request.metadata_mut().insert(INTERNAL_TOKEN_METADATA, token.clone());
        }
        let reply = match self.client.clone().verify_credential(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) => {
                return Err(match (status.code(), status.message()) {
                    (Code::Unauthenticated, "Expired token") => AuthError::Expired,
                    (Code::Unauthenticated, _) => AuthError::Invalid,
                    (code, message) => {
                        tracing::warn!(?code, message, "identity-svc could not verify a credential");
                        AuthError::Unavailable
                    }
                });
            }
        };
        let principal = Principal {
            user_id: reply.user_id,
            kind: CredentialKind::try_from(reply.kind).unwrap_or(CredentialKind::Unspecified),
            role: Role::try_from(reply.role).unwrap_or(Role::Unspecified),
            expires_at_ms: reply.expires_at_ms,
            credential_id: reply.credential_id,
            password_needs_reset: reply.password_needs_reset,
        };
        if principal.kind == CredentialKind::Unspecified || principal.role == Role::Unspecified {
            return Err(AuthError::Unavailable);
        }
        Ok((principal, self.cache_deadline(reply.cache_until_ms)))
    }

    /// When a fresh answer stops being trusted, or `None` if it must not be cached.
    fn cache_deadline(&self, cache_until_ms: i64) -> Option<Instant> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let offered = Duration::from_millis(u64::try_from(cache_until_ms.saturating_sub(now_ms)).ok()?);
        let cap = if self.stream_up.load(Ordering::Acquire) { self.max_ttl } else { DEGRADED_TTL };
        let ttl = offered.min(cap);
        (!ttl.is_zero()).then(|| Instant::now() + ttl)
    }

    /// Whether `principal` was revoked (or everything flushed) too recently to cache an answer
    /// about it: the replica that answered may not have heard of the revocation yet.
    fn is_settling(&self, principal: &Principal) -> bool {
        let access = principal.kind == CredentialKind::AccessToken;
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        now_ms < self.settled_after_ms.load(Ordering::Acquire)
            || self
                .recently_revoked
                .contains_key(&Revoked::Credential { id: principal.credential_id, access })
            || self.recently_revoked.contains_key(&Revoked::User(principal.user_id))
    }

    async fn apply(&self, target: Target) {
        // Remembered before the epoch moves: an answer that passes the epoch check after this
        // point is checked against the remembered target.
        match &target {
            Target::Credential(credential) => {
                let access = credential.kind == i32::from(CredentialKind::AccessToken);
                self.recently_revoked.insert(Revoked::Credential { id: credential.id, access }, ()).await;
            }
            Target::UserId(user_id) => self.recently_revoked.insert(Revoked::User(*user_id), ()).await,
            Target::Flush(_) => {
                let until = self.started.elapsed() + SETTLE;
                let until_ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
                self.settled_after_ms.fetch_max(until_ms, Ordering::AcqRel);
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match target {
            Target::Credential(credential) => {
                let id = credential.id;
                let access = credential.kind == i32::from(CredentialKind::AccessToken);
                let _ = self.positive.invalidate_entries_if(move |_, cached| {
                    let principal = &cached.principal;
                    principal.credential_id == id
                        && ((principal.kind == CredentialKind::AccessToken) == access)
                });
            }
            Target::UserId(user_id) => {
                let _ =
                    self.positive.invalidate_entries_if(move |_, cached| cached.principal.user_id == user_id);
            }
            Target::Flush(_) => self.positive.invalidate_all(),
        }
    }

    fn lose_stream(&self) {
        if self.stream_up.swap(false, Ordering::AcqRel) {
            tracing::warn!("revocation stream lost: verification cache dropped until it is back");
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.positive.invalidate_all();
    }
}

/// A revocation stream silent this long is dead (identity-svc beats every 500 ms).
pub const STREAM_SILENCE: Duration = Duration::from_millis(1500);

/// Metadata carrying the internal service credential.
pub const INTERNAL_TOKEN_METADATA: &str = "x-ashgate-internal-token";

/// Follows identity-svc's revocation stream for as long as the verifier lives, reconnecting
/// (to any replica) with backoff.
async fn follow_revocations(inner: std::sync::Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let mut request = Request::new(pb::WatchRevocationsRequest {});
        if let Some(token) = &strong.internal_token {
            request.metadata_mut().insert(INTERNAL_TOKEN_METADATA, token.clone());
        }
        let mut client = strong.client.clone();
        drop(strong);
        match client.watch_revocations(request).await {
            Ok(response) => {
                let mut events = response.into_inner();
                if let Some(strong) = inner.upgrade() {
                    // Anything cached before now may have missed revocations.
                    strong.positive.invalidate_all();
                    strong.epoch.fetch_add(1, Ordering::AcqRel);
                    strong.stream_up.store(true, Ordering::Release);
                    tracing::info!("following identity-svc revocations");
                }
                backoff = Duration::from_millis(50);
                // identity-svc beats twice a second; silence means the stream is dead even when
                // TCP has not noticed (a paused host, a partition without FIN or reset).
                while let Ok(Some(event)) = tokio::time::timeout(STREAM_SILENCE, events.next()).await {
                    let Some(strong) = inner.upgrade() else { return };
                    match event {
                        Ok(pb::RevocationEvent { target: Some(target), .. }) => strong.apply(target).await,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(status) => tracing::debug!(code = ?status.code(), "revocation stream unavailable"),
        }
        let Some(strong) = inner.upgrade() else { return };
        strong.lose_stream();
        drop(strong);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_internal_token() {
        let env = Env::from_pairs([("ASHGATE_INTERNAL_TOKEN", "internal-token-0123456789abcdefghijklm")]);
        let config = VerifierConfig::from_env(&env).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("internal-token-0123"), "{printed}");
        assert!(printed.contains("***"));
    }

    #[test]
    fn identity_urls_are_checked() {
        let env = Env::from_pairs([("ASHGATE_IDENTITY_URL", "http://a:1, ftp://b")]);
        let err = VerifierConfig::from_env(&env).unwrap_err().to_string();
        assert_eq!(err, "ASHGATE_IDENTITY_URL: \"ftp://b\" is not an http(s):// URL");
    }
}

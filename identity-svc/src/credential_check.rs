//! Verifying a bearer credential: the admin secret, an access token or an API key, answered
//! with the owner's current role. Answers are cached per token row and evicted by revocations.

use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::broadcast::error::RecvError;

use crate::error::{Error, Result};
use crate::identity::{Identity, now_ms};
use crate::principal::{CredentialKind, Principal, Role};
use crate::revocation::{Revocation, RevocationBus};
use crate::token::{DecodedToken, EXPIRED_TOKEN, INVALID_TOKEN, TokenKind};

/// How long this replica trusts a row it read (revocations evict sooner).
const ROW_TTL: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Entry {
    principal: Principal,
    nonce_hash: Vec<u8>,
}

/// Cache of verified rows keyed by (kind, row id).
#[derive(Clone)]
pub struct VerifyCache {
    rows: Cache<(TokenKind, i64), Entry>,
}

impl VerifyCache {
    pub(crate) fn new() -> Self {
        Self {
            rows: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(ROW_TTL)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Evicts entries as revocations arrive.
    pub(crate) fn follow(&self, bus: &RevocationBus) {
        let mut events = bus.subscribe();
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(revocation) => cache.evict(revocation),
                    Err(RecvError::Lagged(_)) => cache.evict(Revocation::Flush),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Forgets what `revocation` names.
    pub(crate) fn evict(&self, revocation: Revocation) {
        match revocation {
            Revocation::AccessToken(id) => self.rows.invalidate(&(TokenKind::Access, id)),
            Revocation::ApiKey(id) => self.rows.invalidate(&(TokenKind::ApiKey, id)),
            Revocation::User(user_id) => {
                // Only fails when closures are not supported, which they are.
                let _ = self.rows.invalidate_entries_if(move |_, e| e.principal.user_id == user_id);
            }
            Revocation::Flush => self.rows.invalidate_all(),
        }
    }
}

impl Identity {
    /// Who `bearer` is, now. "Invalid token" for anything we did not issue or that was revoked,
    /// "Expired token" for a genuine one past its expiry. Refresh and reset tokens are invalid
    /// here: they are never credentials.
    #[tracing::instrument(skip_all, fields(kind, user_id))]
    pub async fn verify_credential(&self, bearer: &str) -> Result<Principal> {
        if let Some(admin_secret) = &self.config.admin_secret
            && admin_secret.matches(bearer)
        {
            return Ok(self.admin_secret_principal());
        }
        let token = self.codec().map_err(|_| Error::Unauthenticated(INVALID_TOKEN))?.decode(bearer)?;
        if !matches!(token.id.kind, TokenKind::Access | TokenKind::ApiKey) {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        }
        let key = (token.id.kind, token.id.id);
        let now = now_ms();
        if self.revocations.is_reliable()
            && let Some(entry) = self.cache.rows.get(&key)
            && token.nonce_matches(&entry.nonce_hash)
        {
            return check_expiry(entry.principal, now);
        }
        let epoch = self.revocations.epoch();
        let entry = self.load(&token).await?;
        // Only cache what no revocation could have overtaken while we read it, and check again
        // after inserting: a revocation between the check and the insert must not be undone.
        if self.revocations.is_reliable() && self.revocations.epoch() == epoch {
            self.cache.rows.insert(key, entry.clone());
            if self.revocations.epoch() != epoch {
                self.cache.rows.invalidate(&key);
            }
        }
        let principal = check_expiry(entry.principal, now)?;
        if principal.kind != CredentialKind::AccessToken {
            self.note_key_use(principal.credential_id, now);
        }
        tracing::Span::current().record("user_id", principal.user_id);
        Ok(principal)
    }

    /// How long a verifier may cache `principal`: bounded by the credential's expiry and the
    /// configured maximum, and zero while this replica might miss revocations.
    pub fn cache_until_ms(&self, principal: &Principal) -> i64 {
        let now = now_ms();
        if !self.revocations.is_reliable() {
            return now;
        }
        let until = crate::identity::after(now, self.config.max_cache_ttl);
        principal.expires_at_ms.map_or(until, |exp| exp.min(until))
    }

    async fn load(&self, token: &DecodedToken) -> Result<Entry> {
        let invalid = Error::Unauthenticated(INVALID_TOKEN);
        match token.id.kind {
            TokenKind::Access => {
                let row = self.store.access_row(token.id.id).await?.ok_or(invalid)?;
                let principal = Principal {
                    user_id: row.user_id,
                    kind: CredentialKind::AccessToken,
                    role: row.role,
                    expires_at_ms: Some(row.expires_at_ms),
                    credential_id: token.id.id,
                    password_needs_reset: row.password_needs_reset,
                };
                checked(token, row.nonce_hash, principal)
            }
            TokenKind::ApiKey => {
                let row = self.store.api_key_row(token.id.id).await?.ok_or(invalid)?;
                let principal = Principal {
                    user_id: row.key.user_id,
                    kind: if row.owner_role == Role::System {
                        CredentialKind::SystemApiKey
                    } else {
                        CredentialKind::UserApiKey
                    },
                    role: row.owner_role,
                    expires_at_ms: row.key.expires_at_ms,
                    credential_id: token.id.id,
                    password_needs_reset: false,
                };
                checked(token, row.nonce_hash, principal)
            }
            TokenKind::Refresh | TokenKind::PasswordReset => Err(invalid),
        }
    }

    /// Writes `last_used_at` at most once a minute per key, off the request path.
    fn note_key_use(&self, key_id: i64, now: i64) {
        // The cache's entries expire after a minute and it holds a bounded number of keys.
        if self.key_touches.contains_key(&key_id) {
            return;
        }
        self.key_touches.insert(key_id, ());
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(key_id, now).await {
                tracing::debug!(error = %e, key_id, "could not record API key use");
            }
        });
    }
}

fn checked(token: &DecodedToken, stored_nonce_hash: Vec<u8>, principal: Principal) -> Result<Entry> {
    if !token.nonce_matches(&stored_nonce_hash) {
        return Err(Error::Unauthenticated(INVALID_TOKEN));
    }
    Ok(Entry { principal, nonce_hash: stored_nonce_hash })
}

fn check_expiry(principal: Principal, now: i64) -> Result<Principal> {
    // Phoenix: expires_at <= now is expired.
    if principal.expires_at_ms.is_some_and(|exp| exp <= now) {
        return Err(Error::Unauthenticated(EXPIRED_TOKEN));
    }
    Ok(principal)
}

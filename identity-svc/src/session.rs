//! Sessions: sign-in with email and password, refresh-token rotation with reuse detection,
//! and sign-out everywhere.

use std::net::IpAddr;

use crate::audit::{Actor, AuditEvent, EventType, Method};
use crate::error::{Error, Result};
use crate::identity::{Identity, after, now_ms};
use crate::limits::AUTH_BUCKET;
use crate::principal::{Principal, Role};
use crate::revocation::Revocation;
use crate::secret::Secret;
use crate::store::Renewal;
use crate::token::{Nonce, TokenId, TokenKind};
use crate::user::{AuthMethod, normalize_email};

/// Phoenix's message for any failed password sign-in.
pub const INVALID_CREDENTIALS: &str = "Invalid email and/or password";
/// Phoenix's message when either field is empty.
pub const CREDENTIALS_REQUIRED: &str = "Email and password required";

/// A fresh access/refresh pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The session credential.
    pub access_token: String,
    /// Unix ms.
    pub access_expires_at_ms: i64,
    /// Exchanged for the next pair.
    pub refresh_token: String,
    /// Unix ms.
    pub refresh_expires_at_ms: i64,
    /// Whose session it is.
    pub user_id: i64,
    /// The user must change their password first.
    pub password_needs_reset: bool,
}

impl Identity {
    /// Email + password sign-in (Phoenix `POST /auth/login`). Every failure costs one argon2
    /// verification, so an unknown email cannot be told from a wrong password by timing.
    #[tracing::instrument(skip_all, fields(client = ?client_addr))]
    pub async fn login(
        &self,
        email: &str,
        password: &Secret,
        client_addr: Option<IpAddr>,
    ) -> Result<TokenPair> {
        self.require_auth_enabled()?;
        if self.config.basic_auth_disabled {
            return Err(Error::Forbidden("Password sign-in is disabled".into()));
        }
        let email = normalize_email(email);
        self.check_rate_audited(AUTH_BUCKET, client_addr, "login").await?;
        if email.is_empty() || password.expose().is_empty() {
            return Err(Error::Unauthenticated(CREDENTIALS_REQUIRED));
        }
        // Counted before the password is checked, so guesses sent at once cannot all get in.
        let attempt = self.reserve_audited(Method::Password, &email, &email, client_addr).await?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .filter(|u| u.auth_method == AuthMethod::Local && u.role != Role::System);
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let matched = self.hasher.verify(password, hash).await?;
        let Some(user) = user.filter(|_| matched) else {
            self.sign_in_failed(Method::Password, &email, client_addr).await;
            return Err(Error::Unauthenticated(INVALID_CREDENTIALS));
        };
        attempt.succeeded().await;
        let event = signed_in(Method::Password, &user, client_addr);
        self.start_session(user.id, None, user.password_needs_reset, Some(&event)).await
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; presenting a spent one
    /// again after `ASHGATE_REFRESH_REUSE_GRACE_SECONDS` means it was stolen or replayed, so the
    /// whole session family is revoked (beyond Phoenix, which only deletes the old token).
    /// Within that grace, a second use (two tabs renewing at once) gets a fresh pair of the
    /// same family.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str, client_addr: Option<IpAddr>) -> Result<TokenPair> {
        self.require_auth_enabled()?;
        self.check_rate_audited(AUTH_BUCKET, client_addr, "refresh").await?;
        if refresh_token.is_empty() {
            return Err(Error::Unauthenticated(MISSING_REFRESH_TOKEN));
        }
        let invalid = Error::Unauthenticated(INVALID_REFRESH_TOKEN);
        let token = self.codec()?.decode(refresh_token).map_err(|e| match e {
            Error::Unauthenticated(crate::token::EXPIRED_TOKEN) => {
                Error::Unauthenticated(EXPIRED_REFRESH_TOKEN)
            }
            _ => Error::Unauthenticated(INVALID_REFRESH_TOKEN),
        })?;
        if token.id.kind != TokenKind::Refresh {
            return Err(invalid);
        }
        let row = self.store.refresh_row(token.id.id).await?.ok_or(invalid)?;
        if !token.nonce_matches(&row.nonce_hash) {
            return Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN));
        }
        let now = now_ms();
        if row.expires_at_ms <= now {
            return Err(Error::Unauthenticated(EXPIRED_REFRESH_TOKEN));
        }
        // Spent moments ago: another tab of the same browser renewed at the same time, and gets
        // a fresh pair of the same session. Spent earlier: a replay.
        let grace = i64::try_from(self.config.refresh_reuse_grace.as_millis()).unwrap_or(0);
        let fresh = FreshPair::new(&self.config, self.codec()?, now);
        let renewal = self
            .store
            .renew_session(
                row.user_id,
                token.id.id,
                row.family_id,
                grace,
                fresh.refresh(),
                fresh.access(),
                now,
            )
            .await?;
        match renewal {
            Renewal::Issued { refresh_id, access_id, replaced } => {
                for id in replaced {
                    self.revoke(Revocation::AccessToken(id));
                }
                let user =
                    self.store.user_by_id(row.user_id).await?.ok_or(Error::NotFound("User not found"))?;
                fresh.into_pair(
                    self.codec()?,
                    user.id,
                    user.password_needs_reset,
                    (refresh_id, access_id),
                    now,
                )
            }
            Renewal::Spent(_) => {
                tracing::warn!(user_id = row.user_id, "refresh token reused: revoking its session family");
                let event = self.reuse_event(row.user_id, row.family_id, client_addr, "refresh").await?;
                for id in self.store.delete_family(row.family_id, &event, now).await? {
                    self.revoke(Revocation::AccessToken(id));
                }
                Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN))
            }
            Renewal::Gone => Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN)),
        }
    }

    /// Ends every session of the caller (Phoenix `GET /auth/logout`): identified by the
    /// principal, else by a live refresh token. A spent refresh token identifies nobody (a thief
    /// may hold it), but it does end its own family: whoever renewed it, the owner signing out
    /// with it or a thief, that session ends, as a replay at `/refresh` would end it. Returns the
    /// user id, 0 if nobody was identified.
    #[tracing::instrument(skip_all)]
    pub async fn logout(
        &self,
        principal: Option<&Principal>,
        refresh_token: Option<&str>,
        client_addr: Option<IpAddr>,
    ) -> Result<i64> {
        if let Some(user_id) = principal.filter(|p| p.is_session()).map(|p| p.user_id) {
            let event = self.sign_out_event(user_id, client_addr, "access_token").await?;
            self.revoke_sessions_of(user_id, Some(&event)).await?;
            return Ok(user_id);
        }
        let (Some(token), Some(codec)) = (refresh_token, self.codec.as_ref()) else { return Ok(0) };
        let Ok(token) = codec.decode(token) else { return Ok(0) };
        if token.id.kind != TokenKind::Refresh {
            return Ok(0);
        }
        let Some(row) =
            self.store.refresh_row(token.id.id).await?.filter(|r| token.nonce_matches(&r.nonce_hash))
        else {
            return Ok(0);
        };
        if row.rotated_at_ms.is_some() {
            let event = self.reuse_event(row.user_id, row.family_id, client_addr, "logout").await?;
            for id in self.store.delete_family(row.family_id, &event, now_ms()).await? {
                self.revoke(Revocation::AccessToken(id));
            }
            return Ok(0);
        }
        if row.expires_at_ms <= now_ms() {
            return Ok(0);
        }
        let event = self.sign_out_event(row.user_id, client_addr, "refresh_token").await?;
        self.revoke_sessions_of(row.user_id, Some(&event)).await?;
        Ok(row.user_id)
    }

    /// Deletes every session of a user (with `event`, if the ending is an event of its own) and
    /// tells every verifier.
    pub(crate) async fn revoke_sessions_of(&self, user_id: i64, event: Option<&AuditEvent>) -> Result<()> {
        self.store.delete_sessions_of(user_id, event, now_ms()).await?;
        self.revoke(Revocation::User(user_id));
        Ok(())
    }

    /// Issues a new pair, continuing `family_id` or starting a family, with `event` (a sign-in).
    pub(crate) async fn start_session(
        &self,
        user_id: i64,
        family_id: Option<i64>,
        needs_reset: bool,
        event: Option<&AuditEvent>,
    ) -> Result<TokenPair> {
        let codec = self.codec()?;
        let now = now_ms();
        let fresh = FreshPair::new(&self.config, codec, now);
        let ids = self
            .store
            .insert_session(user_id, family_id, fresh.refresh(), fresh.access(), now, event)
            .await?;
        fresh.into_pair(codec, user_id, needs_reset, ids, now)
    }

    /// A sign-out of `user_id`, who identified themself with `by` (which token).
    async fn sign_out_event(&self, user_id: i64, addr: Option<IpAddr>, by: &str) -> Result<AuditEvent> {
        let username = self.store.user_by_id(user_id).await?.map(|u| u.username).unwrap_or_default();
        Ok(AuditEvent::new(EventType::SignedOut)
            .actor(Actor::User(user_id))
            .on_user(user_id, &username)
            .from_addr(addr)
            .with("identified_by", by))
    }

    /// A spent refresh token of `user_id` presented again (at `route`): its family is revoked.
    async fn reuse_event(
        &self,
        user_id: i64,
        family_id: i64,
        addr: Option<IpAddr>,
        route: &str,
    ) -> Result<AuditEvent> {
        let username = self.store.user_by_id(user_id).await?.map(|u| u.username).unwrap_or_default();
        Ok(AuditEvent::new(EventType::RefreshTokenReused)
            .on_user(user_id, &username)
            .from_addr(addr)
            .with("session_family", family_id)
            .with("presented_to", route))
    }
}

/// A sign-in of `user` with `method`.
pub(crate) fn signed_in(method: Method, user: &crate::user::User, addr: Option<IpAddr>) -> AuditEvent {
    AuditEvent::new(EventType::SignInSucceeded)
        .actor(Actor::User(user.id))
        .on_user(user.id, &user.username)
        .from_addr(addr)
        .with("method", method.as_str())
        .with("email", user.email.as_str())
}

/// The secrets and expiries of a pair about to be stored, then signed once its rows exist.
struct FreshPair {
    refresh_nonce: Nonce,
    access_nonce: Nonce,
    refresh_expires: i64,
    access_expires: i64,
    /// The secret that will sign the pair (stored so `ashgate secrets status` can count).
    secret_id: String,
}

impl FreshPair {
    fn new(config: &crate::config::IdentityConfig, codec: &crate::token::TokenCodec, now: i64) -> Self {
        Self {
            secret_id: codec.signing_id().to_owned(),
            refresh_nonce: Nonce::generate(),
            access_nonce: Nonce::generate(),
            refresh_expires: after(now, config.refresh_token_ttl),
            access_expires: after(now, config.access_token_ttl),
        }
    }

    /// What the refresh row stores: the nonce's hash, the expiry and the signing secret's id.
    fn refresh(&self) -> (&[u8], i64, &str) {
        (self.refresh_nonce.hash(), self.refresh_expires, &self.secret_id)
    }

    /// What the access row stores.
    fn access(&self) -> (&[u8], i64) {
        (self.access_nonce.hash(), self.access_expires)
    }

    /// Signs the pair for rows (refresh id, access id).
    fn into_pair(
        self,
        codec: &crate::token::TokenCodec,
        user_id: i64,
        needs_reset: bool,
        (refresh_id, access_id): (i64, i64),
        now: i64,
    ) -> Result<TokenPair> {
        Ok(TokenPair {
            access_token: codec.issue(
                TokenId { kind: TokenKind::Access, id: access_id },
                &self.access_nonce,
                now,
                Some(self.access_expires),
            )?,
            access_expires_at_ms: self.access_expires,
            refresh_token: codec.issue(
                TokenId { kind: TokenKind::Refresh, id: refresh_id },
                &self.refresh_nonce,
                now,
                Some(self.refresh_expires),
            )?,
            refresh_expires_at_ms: self.refresh_expires,
            user_id,
            password_needs_reset: needs_reset,
        })
    }
}

/// Phoenix's `/auth/refresh` messages.
pub const MISSING_REFRESH_TOKEN: &str = "Missing refresh token";
/// Not a live refresh token.
pub const INVALID_REFRESH_TOKEN: &str = "Invalid refresh token";
/// A genuine refresh token past its expiry.
pub const EXPIRED_REFRESH_TOKEN: &str = "Expired refresh token";

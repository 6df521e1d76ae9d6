//! Sessions: sign-in with email and password, refresh-token rotation with reuse detection,
//! and sign-out everywhere.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::identity::{Identity, after, now_ms};
use crate::limits::{AUTH_BUCKET, Guard};
use crate::principal::{Principal, Role};
use crate::revocation::Revocation;
use crate::secret::Secret;
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
        self.limits.check_rate(AUTH_BUCKET, client_addr).await?;
        let email = normalize_email(email);
        if email.is_empty() || password.expose().is_empty() {
            return Err(Error::Unauthenticated(CREDENTIALS_REQUIRED));
        }
        // Counted before the password is checked, so guesses sent at once cannot all get in.
        let attempt = self.limits.reserve(Guard::SignIn, &email, client_addr).await?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .filter(|u| u.auth_method == AuthMethod::Local && u.role != Role::System);
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let matched = self.hasher.verify(password, hash).await?;
        let Some(user) = user.filter(|_| matched) else {
            return Err(Error::Unauthenticated(INVALID_CREDENTIALS));
        };
        attempt.succeeded().await;
        self.start_session(user.id, None, user.password_needs_reset).await
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; presenting a spent one
    /// again after `ASHGATE_REFRESH_REUSE_GRACE_SECONDS` means it was stolen or replayed, so the
    /// whole session family is revoked (beyond Phoenix, which only deletes the old token).
    /// Within that grace, a second use (two tabs renewing at once) gets a fresh pair of the
    /// same family.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str, client_addr: Option<IpAddr>) -> Result<TokenPair> {
        self.require_auth_enabled()?;
        self.limits.check_rate(AUTH_BUCKET, client_addr).await?;
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
        match self.store.rotate_refresh(token.id.id, now).await? {
            Some(revoked) => {
                for id in revoked {
                    self.revoke(Revocation::AccessToken(id));
                }
            }
            None => {
                // Spent already. Moments ago: another tab of the same browser renewed at the
                // same time, so it gets a fresh pair of the same session. Later: a replay.
                let spent_at = self.store.refresh_row(token.id.id).await?.and_then(|r| r.rotated_at_ms);
                let grace = i64::try_from(self.config.refresh_reuse_grace.as_millis()).unwrap_or(0);
                if !spent_at.is_some_and(|at| now.saturating_sub(at) < grace) {
                    tracing::warn!(
                        user_id = row.user_id,
                        "refresh token reused: revoking its session family"
                    );
                    for id in self.store.delete_family(row.family_id).await? {
                        self.revoke(Revocation::AccessToken(id));
                    }
                    return Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN));
                }
            }
        }
        let user = self.store.user_by_id(row.user_id).await?.ok_or(Error::NotFound("User not found"))?;
        self.start_session(user.id, Some(row.family_id), user.password_needs_reset).await
    }

    /// Ends every session of the caller (Phoenix `GET /auth/logout`): identified by the
    /// principal, else by a refresh token. Returns the user id, 0 if nobody was identified.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, principal: Option<&Principal>, refresh_token: Option<&str>) -> Result<i64> {
        let from_principal = principal.filter(|p| p.is_session()).map(|p| p.user_id);
        let user_id = match from_principal {
            Some(id) => Some(id),
            None => match (refresh_token, self.codec.as_ref()) {
                (Some(token), Some(codec)) => match codec.decode(token) {
                    // Only a live refresh token says who signs out: a spent one (a thief may
                    // hold it) must not end the sessions it was rotated into.
                    Ok(t) if t.id.kind == TokenKind::Refresh => self
                        .store
                        .refresh_row(t.id.id)
                        .await?
                        .filter(|r| {
                            t.nonce_matches(&r.nonce_hash)
                                && r.rotated_at_ms.is_none()
                                && r.expires_at_ms > now_ms()
                        })
                        .map(|r| r.user_id),
                    _ => None,
                },
                _ => None,
            },
        };
        let Some(user_id) = user_id else { return Ok(0) };
        self.revoke_sessions_of(user_id).await?;
        Ok(user_id)
    }

    /// Deletes every session of a user and tells every verifier.
    pub(crate) async fn revoke_sessions_of(&self, user_id: i64) -> Result<()> {
        self.store.delete_sessions_of(user_id).await?;
        self.revoke(Revocation::User(user_id));
        Ok(())
    }

    /// Issues a new pair, continuing `family_id` or starting a family.
    pub(crate) async fn start_session(
        &self,
        user_id: i64,
        family_id: Option<i64>,
        needs_reset: bool,
    ) -> Result<TokenPair> {
        let codec = self.codec()?;
        let now = now_ms();
        let (refresh_nonce, access_nonce) = (Nonce::generate(), Nonce::generate());
        let refresh_expires = after(now, self.config.refresh_token_ttl);
        let access_expires = after(now, self.config.access_token_ttl);
        let (refresh_id, access_id) = self
            .store
            .insert_session(
                user_id,
                family_id,
                (refresh_nonce.hash(), refresh_expires),
                (access_nonce.hash(), access_expires),
                now,
            )
            .await?;
        Ok(TokenPair {
            access_token: codec.issue(
                TokenId { kind: TokenKind::Access, id: access_id },
                &access_nonce,
                now,
                Some(access_expires),
            )?,
            access_expires_at_ms: access_expires,
            refresh_token: codec.issue(
                TokenId { kind: TokenKind::Refresh, id: refresh_id },
                &refresh_nonce,
                now,
                Some(refresh_expires),
            )?,
            refresh_expires_at_ms: refresh_expires,
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

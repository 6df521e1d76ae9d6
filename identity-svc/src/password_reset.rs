//! Password recovery: a single-use reset token per user, sent by email.

use std::net::IpAddr;
use std::sync::Arc;

use crate::audit::{Actor, AuditEvent, EventType};
use crate::error::{Error, Result};
use crate::identity::{Identity, after, now_ms};
use crate::limits::{AUTH_BUCKET, Guard};
use crate::mailer::Mailer;
use crate::principal::Role;
use crate::revocation::Revocation;
use crate::secret::Secret;
use crate::token::{INVALID_TOKEN, Nonce, TokenId, TokenKind};
use crate::user::{AuthMethod, User, normalize_email};

/// Phoenix's 503 text.
pub const SMTP_NOT_CONFIGURED: &str = "SMTP server not configured";

/// Who may recover a password by email: local users, never the system user.
fn is_recoverable(user: &User) -> bool {
    user.auth_method == AuthMethod::Local && user.role != Role::System
}

impl Identity {
    /// Emails a reset link to a local user. Answers as soon as the request is valid: whether
    /// the account exists, and the token write and mail that follow for one that does, happen
    /// in the background, so neither the answer nor its timing tells accounts apart. The link
    /// starts with `PHOENIX_ROOT_URL` (required with SMTP), never with anything the request says.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        client_addr: Option<IpAddr>,
    ) -> Result<()> {
        self.require_auth_enabled()?;
        if self.config.basic_auth_disabled {
            return Err(Error::Forbidden("Password reset is disabled".into()));
        }
        let email = normalize_email(email);
        if email.is_empty() {
            return Err(Error::Invalid("Email required".into()));
        }
        let (Some(_), Some(_)) = (self.mailer.as_ref(), self.config.root_url.as_ref()) else {
            return Err(Error::Unavailable(SMTP_NOT_CONFIGURED.into()));
        };
        self.check_rate_audited(AUTH_BUCKET, client_addr, "password_reset_email").await?;
        let identity = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = identity.mail_reset_link(&email, client_addr).await {
                tracing::warn!(error = %e, "could not issue a password-reset link");
            }
        });
        Ok(())
    }

    /// The background half of [`Identity::request_password_reset`]: local human users only.
    /// Only a link actually issued is an event: requests for nobody change nothing, and the
    /// per-address rate limit bounds them.
    async fn mail_reset_link(&self, email: &str, client_addr: Option<IpAddr>) -> Result<()> {
        let (Some(mailer), Some(base)) = (self.mailer.as_ref(), self.config.root_url.as_deref()) else {
            return Ok(());
        };
        let Some(user) = self.store.user_by_email(email).await?.filter(is_recoverable) else {
            return Ok(());
        };
        let event = AuditEvent::new(EventType::PasswordResetRequested)
            .on_user(user.id, &user.username)
            .from_addr(client_addr)
            .with("email", user.email.as_str());
        let Some(token) = self.issue_reset_token(user.id, &event).await? else {
            tracing::info!(user_id = user.id, "reset link sent less than a minute ago; not sending another");
            return Ok(());
        };
        let link = format!("{base}/reset-password-with-token?token={token}");
        mailer.send_password_reset(&user.email, &link);
        Ok(())
    }

    /// Issues the one live reset token of a user (a new one voids the old), or `None` when the
    /// current one is younger than `ASHGATE_PASSWORD_RESET_COOLDOWN_SECONDS`.
    pub(crate) async fn issue_reset_token(&self, user_id: i64, event: &AuditEvent) -> Result<Option<String>> {
        let now = now_ms();
        let expires = after(now, self.config.password_reset_token_ttl);
        let nonce = Nonce::generate();
        let cooldown = i64::try_from(self.config.password_reset_cooldown.as_millis()).unwrap_or(i64::MAX);
        let Some(id) =
            self.store.replace_reset_token(user_id, nonce.hash(), now, expires, cooldown, event).await?
        else {
            return Ok(None);
        };
        self.codec()?
            .issue(TokenId { kind: TokenKind::PasswordReset, id }, &nonce, now, Some(expires))
            .map(Some)
    }

    /// Sets a new password with a reset token: single use, every session of the user ends.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Secret,
        client_addr: Option<IpAddr>,
    ) -> Result<()> {
        self.require_auth_enabled()?;
        if self.config.basic_auth_disabled {
            return Err(Error::Forbidden("Password reset is disabled".into()));
        }
        self.check_rate_audited(AUTH_BUCKET, client_addr, "password_reset").await?;
        if password.expose().is_empty() {
            return Err(Error::Invalid("Password required".into()));
        }
        let invalid = || Error::Unauthenticated(INVALID_TOKEN);
        let decoded = self.codec()?.decode(token).map_err(|_| invalid())?;
        if decoded.id.kind != TokenKind::PasswordReset {
            return Err(invalid());
        }
        let row = self.store.reset_row(decoded.id.id).await?.ok_or_else(invalid)?;
        if !decoded.nonce_matches(&row.nonce_hash) || row.expires_at_ms <= now_ms() {
            return Err(invalid());
        }
        self.policy.check(password.expose())?;
        let hash = self.hasher.hash(password).await?;
        if !self.store.consume_reset_token(decoded.id.id).await? {
            return Err(invalid());
        }
        // Phoenix: a user who is gone or no longer local gets 204 and nothing changes.
        let target = self.store.user_by_id(row.user_id).await?.filter(is_recoverable);
        let Some(target) = target else { return Ok(()) };
        let event = AuditEvent::new(EventType::PasswordResetCompleted)
            .actor(Actor::User(target.id))
            .on_user(target.id, &target.username)
            .from_addr(client_addr);
        let Some(user) = self.store.set_password(target.id, &hash, false, now_ms(), &event).await? else {
            return Ok(());
        };
        self.revoke(Revocation::User(user.id));
        self.limits.clear(Guard::SignIn, &user.email).await;
        Ok(())
    }
}

impl Identity {
    /// What happened to the reset mails sent so far (`None` without SMTP).
    pub fn mail_stats(&self) -> Option<&crate::mailer::MailStats> {
        self.mailer.as_ref().map(Mailer::stats)
    }

    /// Sets a local user's password from the command line (`ashgate users reset-password`):
    /// no credential needed, since whoever runs it can already reach the database. Every
    /// session of the user ends; `must_change` makes them choose another at next sign-in.
    pub async fn set_password_offline(
        &self,
        email: &str,
        password: &Secret,
        must_change: bool,
    ) -> Result<crate::user::User> {
        let email = normalize_email(email);
        let user =
            self.store.user_by_email(&email).await?.ok_or(Error::NotFound(crate::user::USER_NOT_FOUND))?;
        if !is_recoverable(&user) {
            return Err(Error::Precondition("Only local users have a password".into()));
        }
        self.policy.check(password.expose())?;
        let hash = self.hasher.hash(password).await?;
        let event = AuditEvent::new(EventType::PasswordChanged)
            .actor(Actor::CommandLine)
            .on_user(user.id, &user.username)
            .with("own", false)
            .with("must_change", must_change);
        let user = self
            .store
            .set_password(user.id, &hash, must_change, now_ms(), &event)
            .await?
            .ok_or(Error::NotFound(crate::user::USER_NOT_FOUND))?;
        self.revoke(Revocation::User(user.id));
        self.limits.clear(Guard::SignIn, &user.email).await;
        Ok(user)
    }
}

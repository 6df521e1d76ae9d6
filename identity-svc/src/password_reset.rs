//! Password recovery: a single-use reset token per user, sent by email.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::identity::{Identity, after, now_ms};
use crate::limits::AUTH_BUCKET;
use crate::mailer::Mailer;
use crate::revocation::Revocation;
use crate::secret::Secret;
use crate::token::{INVALID_TOKEN, Nonce, TokenId, TokenKind};
use crate::user::{AuthMethod, normalize_email};

/// Phoenix's 503 text.
pub const SMTP_NOT_CONFIGURED: &str = "SMTP server not configured";

/// The base of the emailed link: an http(s) URL with a host and no credentials, query or
/// fragment (`scheme://host[:port][/path]`), without a trailing `/`.
fn link_base(raw: &str) -> Result<String> {
    let invalid = || Error::Invalid("link_base_url must be an http(s) URL".into());
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid())?;
    let plain = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() || !plain {
        return Err(invalid());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Identity {
    /// Emails a reset link to a local user. Unknown emails succeed silently (no disclosure).
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: &str,
        link_base_url: &str,
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
        let Some(mailer) = self.mailer.as_ref() else {
            return Err(Error::Unavailable(SMTP_NOT_CONFIGURED.into()));
        };
        let base = link_base(link_base_url)?;
        self.limits.check_rate(AUTH_BUCKET, client_addr).await?;
        let Some(user) =
            self.store.user_by_email(&email).await?.filter(|u| u.auth_method == AuthMethod::Local)
        else {
            return Ok(());
        };
        let token = self.issue_reset_token(user.id).await?;
        let link = format!("{base}/reset-password-with-token?token={token}");
        mailer.send_password_reset(&user.email, &link);
        Ok(())
    }

    /// Issues the one live reset token of a user (a new one voids the old).
    pub(crate) async fn issue_reset_token(&self, user_id: i64) -> Result<String> {
        let now = now_ms();
        let expires = after(now, self.config.password_reset_token_ttl);
        let nonce = Nonce::generate();
        let id = self.store.replace_reset_token(user_id, nonce.hash(), now, expires).await?;
        self.codec()?.issue(TokenId { kind: TokenKind::PasswordReset, id }, &nonce, now, Some(expires))
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
        self.limits.check_rate(AUTH_BUCKET, client_addr).await?;
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
        let Some(user) = self.store.set_password(row.user_id, &hash, false, now_ms()).await? else {
            return Ok(());
        };
        self.revoke(Revocation::User(user.id));
        self.limits.clear_email(&user.email).await;
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
        if user.auth_method != AuthMethod::Local || user.role == crate::principal::Role::System {
            return Err(Error::Precondition("Only local users have a password".into()));
        }
        self.policy.check(password.expose())?;
        let hash = self.hasher.hash(password).await?;
        let user = self
            .store
            .set_password(user.id, &hash, must_change, now_ms())
            .await?
            .ok_or(Error::NotFound(crate::user::USER_NOT_FOUND))?;
        self.revoke(Revocation::User(user.id));
        self.limits.clear_email(&user.email).await;
        Ok(user)
    }
}

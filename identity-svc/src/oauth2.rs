//! Completing an OAuth2/OIDC sign-in whose ID token the gateway has verified: find or create
//! the user, then start a session (Phoenix `routers/oauth2.py` user resolution).

use std::net::IpAddr;

use crate::audit::{Actor, AuditEvent, EventType, Method};
use crate::error::{Error, Result};
use crate::identity::{Identity, now_ms};
use crate::principal::Role;
use crate::session::TokenPair;
use crate::token::random_token;
use crate::user::{AuthMethod, NewUser, User, is_hidden, is_valid_email, normalize_email};

/// What the gateway learnt from the provider.
#[derive(Debug, Clone)]
pub struct OAuth2Identity {
    /// The provider's client id (identities are unique per client).
    pub client_id: String,
    /// The `sub` claim.
    pub subject: String,
    /// The email claim (after `EMAIL_ATTRIBUTE_PATH`).
    pub email: String,
    /// The provider vouched for the email (`email_verified: true`).
    pub email_verified: bool,
    /// Preferred username (the `name` claim), may be empty.
    pub username: String,
    /// The `picture` claim.
    pub profile_picture_url: Option<String>,
    /// `PHOENIX_OAUTH2_<IDP>_ALLOW_SIGN_UP`.
    pub allow_sign_up: bool,
    /// Mapped role, or `None` for the default (viewer; an existing user keeps theirs).
    pub role: Option<Role>,
    /// Re-apply `role` to an existing user.
    pub resync_role: bool,
}

/// Phoenix's error codes, carried as FAILED_PRECONDITION messages; the gateway redirects to
/// `/login?error=<code>`.
pub const EMAIL_IN_USE: &str = "email_in_use";
/// Sign-up disallowed and no matching user.
pub const SIGN_IN_NOT_ALLOWED: &str = "sign_in_not_allowed";

impl Identity {
    /// Signs in (or signs up) the person behind an OAuth2 identity: the account linked to
    /// (client id, subject), else a never-linked OAuth2 account pre-created for a verified
    /// email. An email that belongs to a local account is refused (`email_in_use`), never linked.
    #[tracing::instrument(skip_all, fields(client_id = %identity.client_id))]
    pub async fn complete_oauth2_sign_in(
        &self,
        identity: OAuth2Identity,
        client_addr: Option<IpAddr>,
    ) -> Result<TokenPair> {
        self.require_auth_enabled()?;
        let email = normalize_email(&identity.email);
        match self.oauth2_account(&identity, email.clone(), client_addr).await {
            Ok(user) => {
                let event = crate::session::signed_in(Method::OAuth2, &user, client_addr)
                    .with("client_id", identity.client_id.as_str());
                self.start_session(user.id, None, false, Some(&event)).await
            }
            Err(e @ Error::Precondition(_)) => {
                self.sign_in_failed(Method::OAuth2, &email, client_addr).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The account an OAuth2 identity opens (found, linked or created).
    async fn oauth2_account(
        &self,
        identity: &OAuth2Identity,
        email: String,
        client_addr: Option<IpAddr>,
    ) -> Result<User> {
        if identity.subject.is_empty() || !is_valid_email(&email) {
            return Err(Error::Invalid("OAuth2 identity needs a subject and a valid email".into()));
        }
        if identity.role == Some(Role::System) {
            return Err(Error::Invalid("Role SYSTEM cannot be assigned".into()));
        }
        let user = match self.store.user_by_oauth2(&identity.client_id, &identity.subject).await? {
            Some(user) => Some(user),
            None => self.link_by_email(identity, &email).await?,
        };
        match user {
            Some(user) => self.refresh_profile(user, identity, client_addr).await,
            None if identity.allow_sign_up => self.sign_up(identity, email, client_addr).await,
            None => Err(Error::Precondition(SIGN_IN_NOT_ALLOWED.into())),
        }
    }

    /// An existing account with this email that may take this identity: an OAuth2 user that
    /// was pre-created for the email (by an admin, or `PHOENIX_ADMINS`) and never linked to any
    /// identity, when the provider vouches for the email. Anything else with the email is
    /// refused: a provider account whose email claim is unverified, or a second identity with
    /// the email of an account already linked, must never open it.
    async fn link_by_email(&self, identity: &OAuth2Identity, email: &str) -> Result<Option<User>> {
        let Some(user) = self.store.user_by_email(email).await? else { return Ok(None) };
        if user.auth_method != AuthMethod::OAuth2 {
            return Err(Error::Precondition(EMAIL_IN_USE.into()));
        }
        let never_linked = user.oauth2_user_id.is_none()
            && user.oauth2_client_id.as_ref().is_none_or(|client| *client == identity.client_id);
        if never_linked && identity.email_verified {
            return Ok(Some(user));
        }
        let same_client = user.oauth2_client_id.as_ref().is_some_and(|client| *client == identity.client_id);
        if same_client && user.oauth2_user_id.is_some() {
            Err(Error::Precondition(SIGN_IN_NOT_ALLOWED.into()))
        } else {
            Err(Error::Precondition(EMAIL_IN_USE.into()))
        }
    }

    async fn refresh_profile(
        &self,
        user: User,
        identity: &OAuth2Identity,
        addr: Option<IpAddr>,
    ) -> Result<User> {
        let role = match identity.role {
            Some(role) if identity.resync_role && user.role != Role::System => role,
            _ => user.role,
        };
        let picture = identity.profile_picture_url.as_deref().or(user.profile_picture_url.as_deref());
        let changed = role != user.role;
        let event = changed.then(|| {
            AuditEvent::new(EventType::UserRoleChanged)
                .actor(Actor::User(user.id))
                .on_user(user.id, &user.username)
                .from_addr(addr)
                .with("from", user.role.as_str())
                .with("to", role.as_str())
                .with("source", "oauth2")
        });
        // Linked to another identity in the meantime: this one does not sign in as them.
        let updated = self
            .store
            .update_oauth2_profile(
                user.id,
                &identity.client_id,
                &identity.subject,
                picture,
                role,
                now_ms(),
                event.as_ref(),
            )
            .await?
            .ok_or(Error::Precondition(SIGN_IN_NOT_ALLOWED.into()))?;
        if changed {
            self.revoke_sessions_of(user.id, None).await?;
        }
        Ok(updated)
    }

    async fn sign_up(&self, identity: &OAuth2Identity, email: String, addr: Option<IpAddr>) -> Result<User> {
        let base = Some(identity.username.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_owned());
        let base: String = base.chars().filter(|c| !c.is_control() && !is_hidden(*c)).take(56).collect();
        let base = if base.trim().is_empty() { "user".to_owned() } else { base.trim().to_owned() };
        let mut user = NewUser {
            email,
            username: base.clone(),
            // Phoenix: new users without a mapped role are viewers.
            role: identity.role.unwrap_or(Role::Viewer),
            auth_method: AuthMethod::OAuth2,
            password_hash: None,
            password_needs_reset: false,
            oauth2_client_id: Some(identity.client_id.clone()),
            oauth2_user_id: Some(identity.subject.clone()),
            profile_picture_url: identity.profile_picture_url.clone(),
        };
        let event = AuditEvent::new(EventType::UserCreated)
            .from_addr(addr)
            .with("role", user.role.as_str())
            .with("auth_method", "OAUTH2")
            .with("source", "oauth2_sign_up");
        // Phoenix appends a random suffix when the username is taken.
        for _ in 0..5 {
            match self.store.insert_user(&user, now_ms(), Some(&event)).await {
                Err(Error::Conflict("Username already exists" | crate::user::USERNAME_TOO_SIMILAR)) => {
                    let suffix: String =
                        random_token(6).chars().filter(char::is_ascii_alphanumeric).take(5).collect();
                    user.username = format!("{base}-{suffix}");
                }
                Err(Error::Conflict("Email already exists")) => {
                    return Err(Error::Precondition(EMAIL_IN_USE.into()));
                }
                other => return other,
            }
        }
        Err(Error::Conflict("Username already exists"))
    }
}

//! Users: who may create, read, rename, re-role, re-password and delete whom (the seed's
//! permission matrix, plus Phoenix's viewer role and admin secret). With authentication off
//! nobody may: every caller is anonymous then, and a user created that way could sign in the
//! day authentication is turned on.

use crate::audit::{AuditEvent, EventType};
use crate::error::{Error, Result};
use crate::identity::{Caller, Identity, now_ms};
use crate::limits::Guard;
use crate::password::random_password;
use crate::principal::{CredentialKind, Principal, Role};
use crate::revocation::Revocation;
use crate::secret::Secret;

/// Email of the admin seeded on first start; that user can never be deleted or demoted.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";
/// Email of the seeded system user (owner of system API keys).
pub const SYSTEM_EMAIL: &str = "system@localhost";

/// How a user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Email and password.
    Local,
    /// An OpenID Provider.
    OAuth2,
    /// A directory (`PHOENIX_LDAP_*`).
    Ldap,
}

impl AuthMethod {
    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Local => "LOCAL",
            AuthMethod::OAuth2 => "OAUTH2",
            AuthMethod::Ldap => "LDAP",
        }
    }

    /// Parses the database spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "LOCAL" => Some(AuthMethod::Local),
            "OAUTH2" => Some(AuthMethod::OAuth2),
            "LDAP" => Some(AuthMethod::Ldap),
            _ => None,
        }
    }
}

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Lower-cased; never changes (except an LDAP user's, from the directory). Empty for LDAP
    /// users of a directory without emails.
    pub email: String,
    /// Unique display name.
    pub username: String,
    /// Current role.
    pub role: Role,
    /// How they sign in.
    pub auth_method: AuthMethod,
    /// argon2id PHC string; `None` = cannot sign in with a password.
    pub password_hash: Option<String>,
    /// Must change their password before anything else.
    pub password_needs_reset: bool,
    /// OAuth2 client the identity belongs to.
    pub oauth2_client_id: Option<String>,
    /// OAuth2 subject.
    pub oauth2_user_id: Option<String>,
    /// From the provider's `picture` claim.
    pub profile_picture_url: Option<String>,
    /// LDAP: the directory's immutable id (objectGUID, entryUUID), lower-cased.
    pub ldap_unique_id: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of logs.
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish()
    }
}

/// What `insert_user` stores.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lower-cased email.
    pub email: String,
    /// Username.
    pub username: String,
    /// Role (never SYSTEM through the API).
    pub role: Role,
    /// LOCAL or OAUTH2.
    pub auth_method: AuthMethod,
    /// argon2id hash (LOCAL).
    pub password_hash: Option<String>,
    /// Must change password at first sign-in.
    pub password_needs_reset: bool,
    /// OAuth2 client id.
    pub oauth2_client_id: Option<String>,
    /// OAuth2 subject.
    pub oauth2_user_id: Option<String>,
    /// Picture URL.
    pub profile_picture_url: Option<String>,
}

/// A request to create a user through the API.
#[derive(Debug, Clone)]
pub struct CreateUser {
    /// Email (lower-cased on the way in).
    pub email: String,
    /// Username.
    pub username: String,
    /// ADMIN, MEMBER or VIEWER.
    pub role: Role,
    /// LOCAL, OAUTH2 or LDAP.
    pub auth_method: AuthMethod,
    /// LOCAL: the initial password; `None` = random (the user gets one by reset).
    pub password: Option<Secret>,
    /// OAUTH2: the client id to link.
    pub oauth2_client_id: Option<String>,
    /// OAUTH2: the subject to link.
    pub oauth2_user_id: Option<String>,
}

/// Trimmed and lower-cased, as Phoenix compares emails.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A pragmatic email check (Phoenix uses email-validator without deliverability): one `@`, a
/// non-empty local part and domain, no whitespace or control characters, at most 254 bytes.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_username(username: &str) -> Result<String> {
    let username = username.trim();
    if username.is_empty() {
        return Err(Error::Invalid("Username must not be empty".into()));
    }
    if username.chars().count() > 64 {
        return Err(Error::Invalid("Username must be at most 64 characters long".into()));
    }
    if username.chars().any(char::is_control) {
        return Err(Error::Invalid("Username must not contain control characters".into()));
    }
    if username.chars().any(is_hidden) {
        return Err(Error::Invalid(
            "Username must not contain invisible, bidirectional or non-ASCII space characters".into(),
        ));
    }
    Ok(username.to_owned())
}

/// Characters that show as nothing, as a space, or reorder what follows: a name holding one
/// can look exactly like another (`admin\u{200b}`, `\u{202e}nimda`). Unicode's format
/// characters (Cf) that occur in text, the invisible fillers, variation selectors, tags, and
/// every space but the ASCII one.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{1680}'
            | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{2000}'..='\u{200F}'
            | '\u{2028}'..='\u{202F}' | '\u{205F}'..='\u{206F}' | '\u{2800}' | '\u{3000}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// What a username looks like, for telling imitations apart: Unicode TR39's confusable
/// skeleton of its lower case (`аdmin` with a Cyrillic a, `ADMIN` and `admin` share one).
/// Stored unique, so a new name cannot pass for an existing one.
pub fn username_skeleton(username: &str) -> String {
    let folded = username.trim().to_lowercase();
    unicode_security::skeleton(&folded).collect::<String>().to_lowercase()
}

/// The conflict when a name's skeleton is taken.
pub const USERNAME_TOO_SIMILAR: &str = "Username is too similar to an existing username";

/// Clamps a page size: 0 = default 100, at most 1000.
pub fn page_limit(limit: u32) -> u32 {
    if limit == 0 { 100 } else { limit.min(1000) }
}

/// Parses an opaque page cursor (the last id of the previous page).
pub fn parse_cursor(cursor: &str) -> Result<i64> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor.parse::<i64>().ok().filter(|id| *id >= 0).ok_or_else(|| Error::Invalid("Invalid cursor".into()))
}

impl Identity {
    /// Creates a user (admins only). REST-created local users must reset their password.
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id))]
    pub async fn create_user(&self, caller: &Caller, request: CreateUser) -> Result<User> {
        let principal = &caller.principal;
        self.require_auth_enabled()?;
        require_admin(principal)?;
        refuse_api_keys(principal)?;
        let email = normalize_email(&request.email);
        if !is_valid_email(&email) {
            return Err(Error::Invalid("Invalid email address".into()));
        }
        let username = check_username(&request.username)?;
        if request.role == Role::System {
            return Err(Error::Invalid("Role SYSTEM cannot be assigned".into()));
        }
        let mut user = NewUser {
            email,
            username,
            role: request.role,
            auth_method: request.auth_method,
            password_hash: None,
            password_needs_reset: false,
            oauth2_client_id: None,
            oauth2_user_id: None,
            profile_picture_url: None,
        };
        match request.auth_method {
            AuthMethod::Local => {
                if self.config.basic_auth_disabled {
                    return Err(Error::Forbidden(
                        "Local users cannot be created when basic auth is disabled".into(),
                    ));
                }
                let password = match request.password {
                    Some(p) => {
                        self.policy.check(p.expose())?;
                        p
                    }
                    None => Secret::new(random_password()),
                };
                user.password_hash = Some(self.hasher.hash(&password).await?);
                user.password_needs_reset = true;
            }
            AuthMethod::OAuth2 => {
                if request.password.is_some() {
                    return Err(Error::Invalid("OAuth2 users cannot have a password".into()));
                }
                user.oauth2_client_id = request.oauth2_client_id.filter(|s| !s.is_empty());
                user.oauth2_user_id = request.oauth2_user_id.filter(|s| !s.is_empty());
            }
            // Pre-provisioned: matched by email at the first directory sign-in (Phoenix).
            AuthMethod::Ldap => {
                if request.password.is_some() {
                    return Err(Error::Invalid("LDAP users cannot have a password".into()));
                }
            }
        }
        let event = AuditEvent::by(EventType::UserCreated, caller)
            .with("email", user.email.as_str())
            .with("role", user.role.as_str())
            .with("auth_method", user.auth_method.as_str());
        self.store.insert_user(&user, now_ms(), Some(&event)).await
    }

    /// Deletes a user (admins only) with their sessions and keys; never the default admin or
    /// the system user.
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id, target = user_id))]
    pub async fn delete_user(&self, caller: &Caller, user_id: i64) -> Result<()> {
        let principal = &caller.principal;
        self.require_auth_enabled()?;
        require_admin(principal)?;
        let user = self.store.user_by_id(user_id).await?.ok_or(Error::NotFound(USER_NOT_FOUND))?;
        if user.role == Role::System || user.email == DEFAULT_ADMIN_EMAIL {
            return Err(Error::Forbidden("Cannot delete the default admin or system user".into()));
        }
        let event = AuditEvent::by(EventType::UserDeleted, caller)
            .on_user(user.id, &user.username)
            .with("email", user.email.as_str())
            .with("role", user.role.as_str());
        if !self.store.delete_user(user_id, &event, now_ms()).await? {
            return Err(Error::NotFound(USER_NOT_FOUND));
        }
        self.revoke(Revocation::User(user_id));
        Ok(())
    }

    /// A page of human users (admins only); returns (users, next cursor or empty).
    pub async fn list_users(
        &self,
        principal: &Principal,
        cursor: &str,
        limit: u32,
    ) -> Result<(Vec<User>, String)> {
        self.require_auth_enabled()?;
        require_admin(principal)?;
        let limit = page_limit(limit);
        let users = self.store.list_users(parse_cursor(cursor)?, limit).await?;
        let next = if users.len() == limit as usize {
            users.last().map(|u| u.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((users, next))
    }

    /// One user: admins see anyone, others only themselves (members cannot see others' emails).
    pub async fn get_user(&self, principal: &Principal, user_id: i64) -> Result<User> {
        self.require_auth_enabled()?;
        if !principal.is_admin() && principal.user_id != user_id {
            return Err(Error::admin_only());
        }
        self.store.user_by_id(user_id).await?.ok_or(Error::NotFound(USER_NOT_FOUND))
    }

    /// The caller's own user (the system user for system keys and the admin secret).
    /// `None` when auth is disabled (Phoenix answers ANONYMOUS).
    pub async fn get_self(&self, principal: &Principal) -> Result<Option<User>> {
        if principal.kind == CredentialKind::Anonymous {
            return Ok(None);
        }
        self.store.user_by_id(principal.user_id).await?.ok_or(Error::NotFound(USER_NOT_FOUND)).map(Some)
    }

    /// Renames a user: anyone themself, admins anyone. The system user is not renamed.
    pub async fn update_username(&self, caller: &Caller, user_id: i64, username: &str) -> Result<User> {
        let target = self.modifiable_user(&caller.principal, user_id).await?;
        let username = check_username(username)?;
        let event = AuditEvent::by(EventType::UserRenamed, caller)
            .on_user(target.id, &target.username)
            .with("from", target.username.as_str())
            .with("to", username.as_str());
        self.store
            .update_username(target.id, &username, now_ms(), &event)
            .await?
            .ok_or(Error::NotFound(USER_NOT_FOUND))
    }

    /// Sets a password. Own: the current password is required and the flag clears. Another's
    /// (admins): the target must change it at next sign-in. Either way every session of the
    /// target ends.
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id, target = user_id))]
    pub async fn update_password(
        &self,
        caller: &Caller,
        user_id: i64,
        new_password: &Secret,
        current_password: Option<&Secret>,
    ) -> Result<User> {
        let principal = &caller.principal;
        let target = self.modifiable_user(principal, user_id).await?;
        refuse_api_keys(principal)?;
        if target.auth_method != AuthMethod::Local {
            return Err(Error::Precondition("Only local users have a password".into()));
        }
        let own = principal.user_id == target.id && principal.kind != CredentialKind::AdminSecret;
        if own {
            let current = current_password.filter(|p| !p.expose().is_empty());
            let Some(current) = current else {
                return Err(Error::Invalid("Current password is required".into()));
            };
            if new_password.expose() == current.expose() {
                return Err(Error::Invalid(SAME_PASSWORD.into()));
            }
            // A stolen session must not be able to guess the owner's password here.
            let attempt = self.limits.reserve(Guard::CurrentPassword, &target.id.to_string(), None).await?;
            if !self.hasher.verify(current, target.password_hash.as_deref()).await? {
                return Err(Error::Invalid("Current password is incorrect".into()));
            }
            attempt.succeeded().await;
        }
        self.policy.check(new_password.expose())?;
        let hash = self.hasher.hash(new_password).await?;
        let event = AuditEvent::by(EventType::PasswordChanged, caller)
            .on_user(target.id, &target.username)
            .with("own", own)
            .with("must_change", !own);
        let user = self
            .store
            .set_password(target.id, &hash, !own, now_ms(), &event)
            .await?
            .ok_or(Error::NotFound(USER_NOT_FOUND))?;
        self.revoke(Revocation::User(target.id));
        Ok(user)
    }

    /// Changes a role (admins only): never one's own, the default admin's or the system user's,
    /// and never to SYSTEM. The target's sessions end (Phoenix logs them out).
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id, target = user_id))]
    pub async fn update_role(&self, caller: &Caller, user_id: i64, role: Role) -> Result<User> {
        let principal = &caller.principal;
        self.require_auth_enabled()?;
        require_admin(principal)?;
        refuse_api_keys(principal)?;
        if role == Role::System {
            return Err(Error::Invalid("Role SYSTEM cannot be assigned".into()));
        }
        if principal.user_id == user_id && principal.kind != CredentialKind::Anonymous {
            return Err(Error::Forbidden("Cannot change your own role".into()));
        }
        let target = self.store.user_by_id(user_id).await?.ok_or(Error::NotFound(USER_NOT_FOUND))?;
        if target.role == Role::System || target.email == DEFAULT_ADMIN_EMAIL {
            return Err(Error::Forbidden(
                "Cannot change the role of the default admin or system user".into(),
            ));
        }
        let event = AuditEvent::by(EventType::UserRoleChanged, caller)
            .on_user(target.id, &target.username)
            .with("from", target.role.as_str())
            .with("to", role.as_str());
        let user = self
            .store
            .set_role(target.id, role, now_ms(), &event)
            .await?
            .ok_or(Error::NotFound(USER_NOT_FOUND))?;
        self.revoke(Revocation::User(target.id));
        Ok(user)
    }

    /// The target of a self-or-admin change: yourself (any human) or anyone (admins); never
    /// the system user.
    async fn modifiable_user(&self, principal: &Principal, user_id: i64) -> Result<User> {
        self.require_auth_enabled()?;
        let own = principal.user_id == user_id && principal.kind != CredentialKind::AdminSecret;
        if !own && !principal.is_admin() {
            return Err(Error::admin_only());
        }
        let target = self.store.user_by_id(user_id).await?.ok_or(Error::NotFound(USER_NOT_FOUND))?;
        if target.role == Role::System {
            return Err(Error::Forbidden("The system user cannot be changed".into()));
        }
        Ok(target)
    }
}

/// API keys cannot make credentials that sign in: a key that could create a user with a
/// password, set someone's password or raise a role could mint an admin who then signs in and
/// mints keys, which keys themselves may not (Phoenix ≥ 18.1).
fn refuse_api_keys(principal: &Principal) -> Result<()> {
    if principal.is_api_key() { Err(Error::Forbidden(KEYS_CANNOT_MINT.into())) } else { Ok(()) }
}

/// Why an API key was refused a user change.
pub const KEYS_CANNOT_MINT: &str =
    "API keys cannot create users, set passwords or change roles: sign in, or use the admin secret";

/// Admins, the admin secret, and (auth disabled) the anonymous principal.
pub(crate) fn require_admin(principal: &Principal) -> Result<()> {
    if principal.is_admin() { Ok(()) } else { Err(Error::admin_only()) }
}

/// Phoenix's 404 text.
pub const USER_NOT_FOUND: &str = "User not found";
/// A password change must change the password (the forced first change above all).
pub const SAME_PASSWORD: &str = "Choose a password different from the current one.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["admin@localhost", "a.b+c@example.co.uk"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in ["", "a", "@x", "a@", "a@@b", "a b@c", "a@b.", "a@.b", "a@b\n"] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
        assert_eq!(normalize_email("  Admin@LocalHost "), "admin@localhost");
    }

    #[test]
    fn cursors_and_limits() {
        assert_eq!(parse_cursor("").unwrap(), 0);
        assert_eq!(parse_cursor("42").unwrap(), 42);
        assert_eq!(parse_cursor("-1").unwrap_err().to_string(), "Invalid cursor");
        assert_eq!(parse_cursor("abc").unwrap_err().to_string(), "Invalid cursor");
        assert_eq!(page_limit(0), 100);
        assert_eq!(page_limit(5000), 1000);
    }
}

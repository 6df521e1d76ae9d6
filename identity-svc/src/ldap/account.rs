//! The account behind a directory sign-in (Phoenix `routers/ldap.py`
//! `get_or_create_ldap_user`): found by unique id, then by email among LDAP accounts; its role
//! re-synced from the groups at every sign-in; created when sign-up is allowed. An email that
//! belongs to a LOCAL or OAuth2 account is refused, never linked.

use super::INVALID_LDAP_CREDENTIALS;
use super::config::LdapConfig;
use super::directory::DirectoryUser;
use std::net::IpAddr;

use crate::audit::{Actor, AuditEvent, EventType};
use crate::error::{Error, Result};
use crate::identity::{Identity, now_ms};
use crate::user::{USERNAME_TOO_SIMILAR, User, is_hidden};

/// Usernames are at most 64 characters (`user.rs`); a collision suffix " (abc123)" takes 9.
const USERNAME_CHARS: usize = 64;
const SUFFIX_CHARS: usize = 9;

fn refused() -> Error {
    Error::Unauthenticated(INVALID_LDAP_CREDENTIALS)
}

impl Identity {
    /// Finds, updates or creates the account of `found`.
    pub(super) async fn ldap_account(
        &self,
        found: DirectoryUser,
        config: &LdapConfig,
        addr: Option<IpAddr>,
    ) -> Result<User> {
        let existing = match (&found.unique_id, &found.email) {
            (Some(unique_id), email) => match self.store.ldap_user_by_unique_id(unique_id).await? {
                Some(user) => Some(user),
                // An account pre-provisioned by email (or from before the unique id was
                // configured) takes the id at its first sign-in; one that already has another
                // id belongs to someone else who had this email (a recycled address).
                None => match email {
                    Some(email) => match self.store.ldap_user_by_email(email).await? {
                        Some(user) if user.ldap_unique_id.as_ref().is_some_and(|id| id != unique_id) => {
                            tracing::error!(
                                user_id = user.id,
                                "LDAP account conflict: this email's account has another unique id; an admin must resolve it"
                            );
                            return Err(refused());
                        }
                        other => other,
                    },
                    None => None,
                },
            },
            (None, Some(email)) => self.store.ldap_user_by_email(email).await?,
            (None, None) => None,
        };
        match existing {
            Some(user) => self.resync(user, &found, addr).await,
            None if !config.allow_sign_up => {
                tracing::info!("LDAP user has no account and PHOENIX_LDAP_ALLOW_SIGN_UP=false: refused");
                Err(refused())
            }
            None => self.sign_up_ldap(&found, addr).await,
        }
    }

    /// Brings email, unique id and role in line with the directory. A role change ends the
    /// user's other sessions, as every role change does.
    async fn resync(&self, user: User, found: &DirectoryUser, addr: Option<IpAddr>) -> Result<User> {
        let email = found.email.as_deref().filter(|e| *e != user.email);
        let unique_id = found.unique_id.as_deref().filter(|id| user.ldap_unique_id.as_deref() != Some(*id));
        let role_changed = found.role != user.role;
        if email.is_none() && unique_id.is_none() && !role_changed {
            return Ok(user);
        }
        let event = role_changed.then(|| {
            AuditEvent::new(EventType::UserRoleChanged)
                .actor(Actor::User(user.id))
                .on_user(user.id, &user.username)
                .from_addr(addr)
                .with("from", user.role.as_str())
                .with("to", found.role.as_str())
                .with("source", "ldap")
        });
        let updated = match self
            .store
            .update_ldap_user(user.id, email, unique_id, found.role, now_ms(), event.as_ref())
            .await
        {
            Ok(Some(updated)) => updated,
            Ok(None) => return Err(refused()),
            Err(Error::Conflict(reason)) => {
                tracing::error!(
                    user_id = user.id,
                    reason,
                    "LDAP user's new email or id belongs to another account: refused"
                );
                return Err(refused());
            }
            Err(e) => return Err(e),
        };
        if role_changed {
            self.revoke_sessions_of(user.id, None).await?;
        }
        Ok(updated)
    }

    /// Creates the account: username from the display name (a random suffix on collision).
    async fn sign_up_ldap(&self, found: &DirectoryUser, addr: Option<IpAddr>) -> Result<User> {
        if let Some(email) = &found.email
            && let Some(other) = self.store.user_by_email(email).await?
        {
            tracing::error!(
                user_id = other.id,
                auth_method = other.auth_method.as_str(),
                "LDAP sign-in with the email of a non-LDAP account: refused, not linked"
            );
            return Err(refused());
        }
        // What user.rs accepts in a username: no control or invisible characters, 64 at most.
        let base: String = found
            .display_name
            .trim()
            .chars()
            .filter(|c| !c.is_control() && !is_hidden(*c))
            .take(USERNAME_CHARS)
            .collect();
        let base = if base.trim().is_empty() { "ldap-user".to_owned() } else { base.trim().to_owned() };
        let mut username = base.clone();
        for _ in 0..5 {
            let inserted = self
                .store
                .insert_ldap_user(
                    found.email.as_deref(),
                    &username,
                    found.role,
                    found.unique_id.as_deref(),
                    now_ms(),
                    Some(
                        &AuditEvent::new(EventType::UserCreated)
                            .from_addr(addr)
                            .with("role", found.role.as_str())
                            .with("auth_method", "LDAP")
                            .with("source", "ldap_sign_up"),
                    ),
                )
                .await;
            match inserted {
                Err(Error::Conflict("Username already exists" | USERNAME_TOO_SIMILAR)) => {
                    // Phoenix: `"{display name} ({token_hex(3)})"`.
                    let suffix = format!("{:06x}", rand::random::<u32>() & 0x00ff_ffff);
                    let stem: String = base.chars().take(USERNAME_CHARS - SUFFIX_CHARS).collect();
                    username = format!("{} ({suffix})", stem.trim_end());
                }
                Err(Error::Conflict(reason)) => {
                    tracing::error!(reason, "LDAP sign-up collided with another account: refused");
                    return Err(refused());
                }
                other => return other,
            }
        }
        Err(Error::Conflict("Username already exists"))
    }
}

//! First-start seeding (Phoenix `db/facilitator.py`): the system user, the default admin, and
//! `PHOENIX_ADMINS`. Existing rows are never modified, so a restart with another initial
//! password changes nothing.

use crate::config::IdentityConfig;
use crate::error::{Error, Result};
use crate::identity::now_ms;
use crate::password::{PasswordHasherPool, random_password};
use crate::principal::Role;
use crate::secret::Secret;
use crate::store::Store;
use crate::user::{AuthMethod, DEFAULT_ADMIN_EMAIL, NewUser, SYSTEM_EMAIL};

/// Seeds what is missing and returns the system user's id.
pub async fn seed(store: &Store, hasher: &PasswordHasherPool, config: &IdentityConfig) -> Result<i64> {
    let system = match store.first_user_with_role(Role::System).await? {
        Some(user) => user,
        None => {
            // No password hash at all: the system user can never sign in.
            let user = new_user(SYSTEM_EMAIL, "system", Role::System, None, false);
            insert_once(store, user).await?
        }
    };
    if store.first_user_with_role(Role::Admin).await?.is_none()
        && store.user_by_email(DEFAULT_ADMIN_EMAIL).await?.is_none()
    {
        let hash = hasher.hash(&config.default_admin_password).await?;
        insert_once(store, new_user(DEFAULT_ADMIN_EMAIL, "admin", Role::Admin, Some(hash), true)).await?;
        tracing::info!(
            email = DEFAULT_ADMIN_EMAIL,
            "created the default admin; the password must be changed at first sign-in"
        );
    }
    for (username, email) in &config.admins {
        if store.user_by_email(email).await?.is_some() {
            continue;
        }
        // An unusable password: the admin gets in by password reset, LDAP or OAuth2 (Phoenix:
        // LDAP when it is configured and OAuth2 is not; matched by email at first sign-in).
        let user = if config.basic_auth_disabled {
            let method = if config.ldap.is_some() && !config.oauth2_configured {
                AuthMethod::Ldap
            } else {
                AuthMethod::OAuth2
            };
            NewUser { auth_method: method, ..new_user(email, username, Role::Admin, None, false) }
        } else {
            let hash = hasher.hash(&Secret::new(random_password())).await?;
            new_user(email, username, Role::Admin, Some(hash), true)
        };
        match store.insert_user(&user, now_ms(), None).await {
            Ok(_) => tracing::info!(%email, "created admin from PHOENIX_ADMINS"),
            // Username taken by someone else: skipped, as Phoenix does.
            Err(Error::Conflict(reason)) => tracing::warn!(%email, reason, "PHOENIX_ADMINS entry skipped"),
            Err(e) => return Err(e),
        }
    }
    Ok(system.id)
}

fn new_user(email: &str, username: &str, role: Role, hash: Option<String>, needs_reset: bool) -> NewUser {
    NewUser {
        email: email.to_owned(),
        username: username.to_owned(),
        role,
        auth_method: AuthMethod::Local,
        password_hash: hash,
        password_needs_reset: needs_reset,
        oauth2_client_id: None,
        oauth2_user_id: None,
        profile_picture_url: None,
    }
}

/// Inserts, or, when another replica seeded the same row at the same moment, reads theirs.
async fn insert_once(store: &Store, user: NewUser) -> Result<crate::user::User> {
    match store.insert_user(&user, now_ms(), None).await {
        Ok(user) => Ok(user),
        Err(Error::Conflict(_)) => {
            store.user_by_email(&user.email).await?.ok_or_else(|| Error::internal("seed conflict"))
        }
        Err(e) => Err(e),
    }
}

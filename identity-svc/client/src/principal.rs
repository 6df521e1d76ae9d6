//! The verified caller, as other services see it.

pub use ashgate_proto::identity::{CredentialKind, Role};

use crate::error::AuthError;

/// Who a verified credential belongs to, with the owner's role as of verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user (the system user for system keys and the admin secret; 0 when auth is off).
    pub user_id: i64,
    /// What kind of credential it was.
    pub kind: CredentialKind,
    /// The owner's current role.
    pub role: Role,
    /// The credential's expiry, Unix ms (0 = never).
    pub expires_at_ms: i64,
    /// Token row or API key id (0 for the admin secret or anonymous).
    pub credential_id: i64,
    /// A session of a user who must change their password before anything else.
    pub password_needs_reset: bool,
}

impl Principal {
    /// Everyone, when authentication is disabled (Phoenix performs no checks at all then).
    pub fn anonymous() -> Self {
        Self {
            user_id: 0,
            kind: CredentialKind::Anonymous,
            role: Role::Admin,
            expires_at_ms: 0,
            credential_id: 0,
            password_needs_reset: false,
        }
    }

    /// Read-only role.
    pub fn is_viewer(&self) -> bool {
        self.role == Role::Viewer
    }

    /// Admin role (admins, the admin secret, anonymous when auth is off).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Refuses what no service should let through: a session that must change its password
    /// first and, when `deny_viewers`, read-only principals.
    pub fn check(&self, deny_viewers: bool) -> Result<(), AuthError> {
        if self.password_needs_reset && self.kind == CredentialKind::AccessToken {
            return Err(AuthError::PasswordChangeRequired);
        }
        if deny_viewers && self.is_viewer() {
            return Err(AuthError::ViewerForbidden);
        }
        Ok(())
    }
}

//! Who is calling, with which kind of credential, and what that lets them do.

use std::fmt;

/// A user's role. `System` is the seeded system user's role (owner of system API keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The system user: can ingest and read, is not an admin (Phoenix).
    System,
    /// Manages users and keys.
    Admin,
    /// Uses the product; manages only themself.
    Member,
    /// Read-only (Phoenix ≥ 12): cannot ingest or change data.
    Viewer,
}

impl Role {
    /// Database and wire spelling (`ADMIN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "SYSTEM",
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
            Role::Viewer => "VIEWER",
        }
    }

    /// Parses the database spelling, case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        [Role::System, Role::Admin, Role::Member, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(value))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of credential a principal authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A session's access token (browser cookie or bearer).
    AccessToken,
    /// An API key owned by a human user.
    UserApiKey,
    /// An API key owned by the system user.
    SystemApiKey,
    /// `PHOENIX_ADMIN_SECRET`.
    AdminSecret,
    /// Authentication is disabled.
    Anonymous,
}

/// An authenticated caller, as of now: the role is the owner's *current* role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user (the system user for system keys and the admin secret; 0 when anonymous).
    pub user_id: i64,
    /// How they authenticated.
    pub kind: CredentialKind,
    /// The user's current role.
    pub role: Role,
    /// The credential's expiry in Unix ms, if it has one.
    pub expires_at_ms: Option<i64>,
    /// Token row or API key id (0 when there is none).
    pub credential_id: i64,
    /// The user must change their password before doing anything else.
    pub password_needs_reset: bool,
}

impl Principal {
    /// The principal every call has when authentication is disabled (Phoenix: no checks at all).
    pub fn anonymous() -> Self {
        Self {
            user_id: 0,
            kind: CredentialKind::Anonymous,
            role: Role::Admin,
            expires_at_ms: None,
            credential_id: 0,
            password_needs_reset: false,
        }
    }

    /// Admins, the admin secret and (auth disabled) everyone.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Signed in as a human through a session (not an API key, not a secret).
    pub fn is_session(&self) -> bool {
        self.kind == CredentialKind::AccessToken
    }

    /// Authenticated with an API key.
    pub fn is_api_key(&self) -> bool {
        matches!(self.kind, CredentialKind::UserApiKey | CredentialKind::SystemApiKey)
    }
}

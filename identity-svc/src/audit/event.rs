//! What an audit event is: its type, outcome, actor and subject as written, and as read back.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::identity::Caller;
use crate::principal::{CredentialKind, Principal};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A sign-in (password, OAuth2 or LDAP) opened a session.
    SignInSucceeded,
    /// A sign-in was refused for its credentials (aggregated).
    SignInFailed,
    /// A sign-in was refused because its address is locked out of the account (aggregated).
    SignInLockedOut,
    /// A request was refused by a per-address rate limit (aggregated).
    RateLimited,
    /// A user's sessions were ended by signing out.
    SignedOut,
    /// A spent refresh token was presented again: its whole session family was revoked.
    RefreshTokenReused,
    /// A password was set (by its owner, an admin or the command line).
    PasswordChanged,
    /// A password-reset link was asked for.
    PasswordResetRequested,
    /// A password was set with a reset link.
    PasswordResetCompleted,
    /// A user was created (by an admin, or by an OAuth2 or LDAP sign-up).
    UserCreated,
    /// A user was deleted.
    UserDeleted,
    /// A user's username changed.
    UserRenamed,
    /// A user's role changed (by an admin, or from the IdP or directory at sign-in).
    UserRoleChanged,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was deleted.
    ApiKeyDeleted,
    /// `PHOENIX_ADMIN_SECRET` authenticated a call (aggregated per address and minute).
    AdminSecretUsed,
    /// A call to an internal-only RPC came without a valid service credential (aggregated).
    InternalCredentialRefused,
}

impl EventType {
    /// Every type, in the order the API documents them.
    pub const ALL: [EventType; 17] = [
        EventType::SignInSucceeded,
        EventType::SignInFailed,
        EventType::SignInLockedOut,
        EventType::RateLimited,
        EventType::SignedOut,
        EventType::RefreshTokenReused,
        EventType::PasswordChanged,
        EventType::PasswordResetRequested,
        EventType::PasswordResetCompleted,
        EventType::UserCreated,
        EventType::UserDeleted,
        EventType::UserRenamed,
        EventType::UserRoleChanged,
        EventType::ApiKeyCreated,
        EventType::ApiKeyDeleted,
        EventType::AdminSecretUsed,
        EventType::InternalCredentialRefused,
    ];

    /// Database and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SignInSucceeded => "sign_in_succeeded",
            EventType::SignInFailed => "sign_in_failed",
            EventType::SignInLockedOut => "sign_in_locked_out",
            EventType::RateLimited => "rate_limited",
            EventType::SignedOut => "signed_out",
            EventType::RefreshTokenReused => "refresh_token_reused",
            EventType::PasswordChanged => "password_changed",
            EventType::PasswordResetRequested => "password_reset_requested",
            EventType::PasswordResetCompleted => "password_reset_completed",
            EventType::UserCreated => "user_created",
            EventType::UserDeleted => "user_deleted",
            EventType::UserRenamed => "user_renamed",
            EventType::UserRoleChanged => "user_role_changed",
            EventType::ApiKeyCreated => "api_key_created",
            EventType::ApiKeyDeleted => "api_key_deleted",
            EventType::AdminSecretUsed => "admin_secret_used",
            EventType::InternalCredentialRefused => "internal_credential_refused",
        }
    }

    /// Parses the wire spelling (exactly).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// The credentials presented were wrong.
    Failure,
    /// A limit, a lockout or a missing service credential stopped it.
    Refused,
}

impl Outcome {
    /// Database and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
        }
    }
}

/// Who did it. Names are looked up when the event is written, so they survive renames and
/// deletions as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Nobody authenticated (a sign-in attempt, an unauthenticated call).
    Nobody,
    /// A user, through a session or their own API key.
    User(i64),
    /// `PHOENIX_ADMIN_SECRET`.
    AdminSecret,
    /// A system API key (by id; its name is recorded).
    SystemKey(i64),
    /// Authentication is disabled.
    Anonymous,
    /// The `ashgate users` command line (whoever can reach the database).
    CommandLine,
}

impl Actor {
    /// The actor behind `principal`.
    pub fn of(principal: &Principal) -> Self {
        match principal.kind {
            CredentialKind::AccessToken | CredentialKind::UserApiKey => Actor::User(principal.user_id),
            CredentialKind::SystemApiKey => Actor::SystemKey(principal.credential_id),
            CredentialKind::AdminSecret => Actor::AdminSecret,
            CredentialKind::Anonymous => Actor::Anonymous,
        }
    }

    /// (type, id) as stored.
    pub(crate) fn parts(self) -> (&'static str, Option<i64>) {
        match self {
            Actor::Nobody => ("none", None),
            Actor::User(id) => ("user", Some(id)),
            Actor::AdminSecret => ("admin_secret", None),
            Actor::SystemKey(id) => ("system_key", Some(id)),
            Actor::Anonymous => ("anonymous", None),
            Actor::CommandLine => ("command_line", None),
        }
    }

    /// The name of an actor that has no row to look it up in.
    pub(crate) fn fixed_name(self) -> Option<&'static str> {
        match self {
            Actor::AdminSecret => Some("admin secret"),
            Actor::Anonymous => Some("anonymous"),
            Actor::CommandLine => Some("command line"),
            Actor::Nobody | Actor::User(_) | Actor::SystemKey(_) => None,
        }
    }
}

/// What it was done to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Nothing in particular.
    None,
    /// A user (id, username at the time).
    User(i64, String),
    /// An API key (id, name).
    ApiKey(i64, String),
    /// An account named by what someone typed to sign in (an email, a directory username),
    /// which may belong to nobody.
    SignInName(String),
    /// An ashgate service's internal RPC (its name).
    Rpc(&'static str),
}

impl Subject {
    /// (type, id, name) as stored.
    pub(crate) fn parts(&self) -> (Option<&'static str>, Option<i64>, Option<&str>) {
        match self {
            Subject::None => (None, None, None),
            Subject::User(id, name) => (Some("user"), Some(*id), Some(name)),
            Subject::ApiKey(id, name) => (Some("api_key"), Some(*id), Some(name)),
            Subject::SignInName(name) => (Some("sign_in_name"), None, Some(name)),
            Subject::Rpc(name) => (Some("rpc"), None, Some(name)),
        }
    }
}

/// How a sign-in proved who it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Email and password.
    Password,
    /// An OpenID Provider.
    OAuth2,
    /// A directory.
    Ldap,
}

impl Method {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::OAuth2 => "oauth2",
            Method::Ldap => "ldap",
        }
    }
}

/// One event about to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// What happened.
    pub event_type: EventType,
    /// How it ended.
    pub outcome: Outcome,
    /// Who did it.
    pub actor: Actor,
    /// What it was done to.
    pub subject: Subject,
    /// The user the event concerns (the subject, a key's owner, who signed in), for filtering.
    pub user_id: Option<i64>,
    /// The end user's address.
    pub client_addr: Option<IpAddr>,
    /// Event-specific facts (never a secret).
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    /// A successful `event_type` by nobody in particular, about nothing yet.
    pub fn new(event_type: EventType) -> Self {
        Self {
            event_type,
            outcome: Outcome::Success,
            actor: Actor::Nobody,
            subject: Subject::None,
            user_id: None,
            client_addr: None,
            detail: Map::new(),
        }
    }

    /// `event_type` done by `caller`, from their address.
    pub fn by(event_type: EventType, caller: &Caller) -> Self {
        Self::new(event_type).actor(Actor::of(&caller.principal)).from_addr(caller.client_addr)
    }

    /// With this outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Done by `actor`.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Done to user `id` (named `username`); the event concerns them.
    pub fn on_user(mut self, id: i64, username: &str) -> Self {
        self.subject = Subject::User(id, username.to_owned());
        self.user_id = Some(id);
        self
    }

    /// Done to `subject`.
    pub fn on(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }

    /// Concerning user `id`.
    pub fn concerning(mut self, id: i64) -> Self {
        self.user_id = Some(id);
        self
    }

    /// From `addr`.
    pub fn from_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.client_addr = addr;
        self
    }

    /// With one more fact.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// A stored event, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Row id (newest first in lists).
    pub id: i64,
    /// What happened (`sign_in_failed`, ...).
    pub event_type: String,
    /// When (Unix ms); for an aggregated row, the first time in its minute.
    pub occurred_at_ms: i64,
    /// The last time (Unix ms); equal to `occurred_at_ms` unless aggregated.
    pub last_at_ms: i64,
    /// How many times (1 unless aggregated).
    pub count: i64,
    /// `none`, `user`, `admin_secret`, `system_key`, `anonymous` or `command_line`.
    pub actor_type: String,
    /// The user or system key id.
    pub actor_id: Option<i64>,
    /// The actor's name when the event happened.
    pub actor: Option<String>,
    /// `user`, `api_key`, `email` or `rpc`.
    pub subject_type: Option<String>,
    /// The user or key id.
    pub subject_id: Option<i64>,
    /// The subject's name (username, key name, email typed, RPC).
    pub subject: Option<String>,
    /// The user the event concerns.
    pub user_id: Option<i64>,
    /// The end user's address.
    pub client_addr: Option<String>,
    /// `success`, `failure` or `refused`.
    pub outcome: String,
    /// A JSON object of event-specific facts.
    pub detail: String,
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only these types (empty: all).
    pub event_types: Vec<EventType>,
    /// Only events by or about this user.
    pub user_id: Option<i64>,
    /// From this time (Unix ms, inclusive).
    pub start_ms: Option<i64>,
    /// Before this time (Unix ms, exclusive).
    pub end_ms: Option<i64>,
    /// Events older than this id (the previous page's cursor).
    pub before_id: Option<i64>,
    /// Page size (clamped to 1..=1000).
    pub limit: u32,
}

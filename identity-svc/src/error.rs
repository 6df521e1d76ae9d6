//! The identity domain's one error type, free of any transport: its mapping to gRPC statuses
//! lives with the gRPC services (`grpc/status.rs`), its conversion from storage errors with the
//! store (`store/mod.rs`).

/// Everything an identity operation can fail with, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential, or one that does not authenticate ("Invalid token", "Expired token", ...).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist (or the caller may not know that it does).
    #[error("{0}")]
    NotFound(&'static str),
    /// Would break a uniqueness rule ("Username already exists").
    #[error("{0}")]
    Conflict(&'static str),
    /// Bad input; the message says which field and rule.
    #[error("{0}")]
    Invalid(String),
    /// Valid input, but the target is in a state that does not allow it.
    #[error("{0}")]
    Precondition(String),
    /// Brute-force lockout or rate limit.
    #[error("{0}")]
    TooMany(&'static str),
    /// A dependency (database, SMTP) is not there; safe to retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected storage failure; details go to the log, never to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The caller is authenticated but lacks the admin role.
    pub fn admin_only() -> Self {
        Self::Forbidden("Only admin or system users can perform this action.".into())
    }

    /// Wraps an unexpected failure.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

/// Result of an identity operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

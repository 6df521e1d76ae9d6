//! Why a request was not authenticated, and how each transport says so.

use http::StatusCode;
use tonic::{Code, Status};

/// A credential that does not let the request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` credential (or a malformed one).
    #[error("Invalid token")]
    Missing,
    /// Not a credential identity-svc issued, or revoked.
    #[error("Invalid token")]
    Invalid,
    /// A genuine credential past its expiry.
    #[error("Expired token")]
    Expired,
    /// Viewers are read-only.
    #[error("Viewers cannot perform this action.")]
    ViewerForbidden,
    /// The user must change their password first.
    #[error("You must change your password before continuing.")]
    PasswordChangeRequired,
    /// identity-svc could not be asked; retry later (never let in unverified).
    #[error("Identity service unavailable")]
    Unavailable,
}

impl AuthError {
    /// Phoenix's text for this failure.
    pub fn message(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::Invalid => "Invalid token",
            AuthError::Expired => "Expired token",
            AuthError::ViewerForbidden => "Viewers cannot perform this action.",
            AuthError::PasswordChangeRequired => "You must change your password before continuing.",
            AuthError::Unavailable => "Identity service unavailable",
        }
    }

    /// gRPC: UNAUTHENTICATED, PERMISSION_DENIED or UNAVAILABLE (retryable by exporters).
    pub fn to_status(&self) -> Status {
        let code = match self {
            AuthError::Missing | AuthError::Invalid | AuthError::Expired => Code::Unauthenticated,
            AuthError::ViewerForbidden | AuthError::PasswordChangeRequired => Code::PermissionDenied,
            AuthError::Unavailable => Code::Unavailable,
        };
        Status::new(code, self.message())
    }

    /// HTTP: 401 (send `WWW-Authenticate: Bearer` with it), 403 or 503.
    pub fn http_status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Invalid | AuthError::Expired => StatusCode::UNAUTHORIZED,
            AuthError::ViewerForbidden | AuthError::PasswordChangeRequired => StatusCode::FORBIDDEN,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The verifier could not be set up (bad identity URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

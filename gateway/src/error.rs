//! The gateway's one error type and its one mapping to HTTP: plain-text bodies with Phoenix's
//! texts, `WWW-Authenticate: Bearer` on every 401, nothing internal in a 500.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tonic::Code;

use ashgate_identity_client::AuthError;

/// `WWW-Authenticate` sent with every 401 (Phoenix ≥ 17.16 sends a Bearer challenge too).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"ashgate\"";

/// Everything a request can fail with, in terms of what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 401 with a Bearer challenge ("Invalid token", "Expired token", ...).
    #[error("{0}")]
    Unauthenticated(String),
    /// 401 from the CSRF check ("untrusted origin"); Phoenix sends it without a challenge.
    #[error("{0}")]
    UntrustedOrigin(&'static str),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409 ("Username already exists").
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 422: the request is well-formed but a value breaks a rule.
    #[error("{0}")]
    Unprocessable(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 415: the body is not of the one media type the route reads.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// 408: the request body did not arrive in time.
    #[error("{0}")]
    Timeout(String),
    /// 429 (brute-force lockout, per-address rate limit).
    #[error("{0}")]
    TooMany(String),
    /// 503: a dependency is down; safe to retry.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the detail goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// identity-svc's `INVALID_ARGUMENT` becomes 400 instead of the default 422 on this route.
    pub fn invalid_as_bad_request(self) -> Self {
        match self {
            Self::Unprocessable(message) => Self::BadRequest(message),
            other => other,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) | Self::UntrustedOrigin(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text shown to the caller (never internal details).
    pub fn public_message(&self) -> &str {
        match self {
            Self::Internal(_) => "Internal Server Error",
            Self::UntrustedOrigin(m) | Self::UnsupportedMediaType(m) => m,
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::BadRequest(m)
            | Self::Unprocessable(m)
            | Self::TooLarge(m)
            | Self::Timeout(m)
            | Self::TooMany(m)
            | Self::Unavailable(m) => m,
        }
    }
}

impl From<tonic::Status> for ApiError {
    /// The one place where identity-svc's and collector-svc's gRPC codes become HTTP.
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::Unauthenticated => Self::Unauthenticated(message),
            Code::PermissionDenied | Code::FailedPrecondition => Self::Forbidden(message),
            Code::NotFound => Self::NotFound(message),
            Code::AlreadyExists => Self::Conflict(message),
            Code::InvalidArgument | Code::OutOfRange => Self::Unprocessable(message),
            Code::ResourceExhausted => Self::TooMany(message),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                tracing::warn!(code = ?status.code(), %message, "dependency unavailable");
                Self::Unavailable("Service unavailable, retry later".into())
            }
            code => Self::Internal(format!("{code:?}: {message}")),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing | AuthError::Invalid | AuthError::Expired => {
                Self::Unauthenticated(error.message().into())
            }
            AuthError::ViewerForbidden | AuthError::PasswordChangeRequired => {
                Self::Forbidden(error.message().into())
            }
            AuthError::Unavailable => Self::Unavailable(error.message().into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let mut response = (status, self.public_message().to_owned()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if matches!(self, Self::Unauthenticated(_)) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
        }
        if matches!(self, Self::Unavailable(_)) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_once() {
        let cases = [
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::FailedPrecondition, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::InvalidArgument, 422),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::Internal, 500),
            (Code::Unknown, 500),
        ];
        for (code, http) in cases {
            assert_eq!(ApiError::from(tonic::Status::new(code, "x")).status().as_u16(), http, "{code:?}");
        }
        let internal = ApiError::from(tonic::Status::internal("db password is hunter2"));
        assert_eq!(internal.public_message(), "Internal Server Error");
        let response = ApiError::Unauthenticated("Invalid token".into()).into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], BEARER_CHALLENGE);
        let csrf = ApiError::UntrustedOrigin("untrusted origin").into_response();
        assert_eq!(csrf.status(), StatusCode::UNAUTHORIZED);
        assert!(csrf.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}

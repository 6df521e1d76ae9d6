//! The collector's one error type and its one mapping to gRPC and to HTTP.

use axum::response::{IntoResponse, Response};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::auth::AuthError;

/// Everything that can go wrong while ingesting or reading spans.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's credential was refused.
    #[error("{}", .0.message())]
    Auth(AuthError),
    /// The queue between receive and commit is full; the caller should retry later.
    #[error("Server is at capacity, retry later")]
    QueueFull {
        /// Seconds the caller should wait.
        retry_after_secs: u32,
    },
    /// The request body (or what it decompresses to) is over the limit.
    #[error("Request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The export holds more spans than the queue could ever take at once.
    #[error("Export holds {spans} spans; at most {limit} are accepted per request")]
    TooManySpans {
        /// Spans in the export.
        spans: usize,
        /// Queue capacity.
        limit: u32,
    },
    /// Neither OTLP protobuf nor OTLP JSON.
    #[error("Unsupported content type: {0}; use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// A `Content-Encoding` other than gzip or deflate.
    #[error("Unsupported content encoding: {0}; use gzip or deflate")]
    UnsupportedEncoding(String),
    /// The body did not arrive in time (a slow client must not hold a decode slot forever).
    #[error("Request body was not received within {secs} s")]
    BodyTimeout {
        /// The time allowed.
        secs: u64,
    },
    /// The body could not be decompressed or decoded.
    #[error("{0}")]
    InvalidBody(String),
    /// A request field is invalid.
    #[error("Invalid {field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No project with that name or id.
    #[error("Project not found")]
    ProjectNotFound,
    /// The span store failed; the export was not stored and may be retried.
    #[error("Span store unavailable")]
    Unavailable,
    /// The collector is shutting down.
    #[error("Collector is shutting down")]
    ShuttingDown,
    /// Start-up failed (binding a port, connecting to or migrating the database).
    #[error("{0}")]
    Startup(String),
}

impl From<AuthError> for Error {
    fn from(error: AuthError) -> Self {
        Self::Auth(error)
    }
}

impl Error {
    /// Seconds a caller should wait before retrying, when retrying makes sense.
    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::QueueFull { retry_after_secs } => Some(*retry_after_secs),
            // identity-svc unreachable: the export was refused, not lost; retrying will work.
            Self::Unavailable | Self::ShuttingDown | Self::Auth(AuthError::Unavailable) => Some(1),
            _ => None,
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Auth(AuthError::ViewerForbidden | AuthError::PasswordChangeRequired) => "forbidden",
            Self::Auth(AuthError::Unavailable) => "auth_unavailable",
            Self::Auth(_) => "unauthenticated",
            Self::QueueFull { .. } => "queue_full",
            Self::TooLarge { .. } | Self::TooManySpans { .. } => "too_large",
            Self::UnsupportedContentType(_) | Self::UnsupportedEncoding(_) => "unsupported_media_type",
            Self::InvalidBody(_) | Self::Invalid { .. } | Self::BodyTimeout { .. } => "invalid",
            Self::ProjectNotFound => "not_found",
            Self::Unavailable | Self::Startup(_) => "store_unavailable",
            Self::ShuttingDown => "shutting_down",
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        let code = match &error {
            Error::Auth(auth) => return auth.to_status(),
            Error::QueueFull { .. } | Error::TooLarge { .. } | Error::TooManySpans { .. } => {
                tonic::Code::ResourceExhausted
            }
            Error::UnsupportedContentType(_) | Error::UnsupportedEncoding(_) | Error::InvalidBody(_) => {
                tonic::Code::InvalidArgument
            }
            Error::Invalid { .. } => tonic::Code::InvalidArgument,
            Error::BodyTimeout { .. } => tonic::Code::DeadlineExceeded,
            Error::ProjectNotFound => tonic::Code::NotFound,
            Error::Unavailable | Error::ShuttingDown => tonic::Code::Unavailable,
            Error::Startup(_) => return tonic::Status::internal("Internal error"),
        };
        let Some(secs) = error.retry_after() else { return tonic::Status::new(code, message) };
        // OTLP exporters retry RESOURCE_EXHAUSTED only when RetryInfo says recovery is possible
        // (a too-large export gets none: retrying it cannot help).
        let details = ErrorDetails::with_retry_info(Some(Duration::from_secs(u64::from(secs))));
        let mut status = tonic::Status::with_error_details(code, message, details);
        status.metadata_mut().insert("retry-after", secs.into());
        status
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Error::Auth(auth) => (auth.http_status(), auth.message().to_owned()),
            Error::QueueFull { .. } => (StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            Error::TooLarge { .. } | Error::TooManySpans { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, self.to_string())
            }
            Error::UnsupportedContentType(_) | Error::UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, self.to_string())
            }
            Error::InvalidBody(_) | Error::Invalid { .. } => (StatusCode::BAD_REQUEST, self.to_string()),
            Error::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, self.to_string()),
            Error::ProjectNotFound => (StatusCode::NOT_FOUND, self.to_string()),
            Error::Unavailable | Error::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, self.to_string()),
            Error::Startup(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal error".to_owned()),
        };
        let mut response = (status, message).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

//! The identity domain's errors as gRPC statuses: one code per kind, the message as the domain
//! wrote it, and an internal error's detail only in the log.

use tonic::{Code, Status};

use crate::error::Error;

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let (code, message) = match err {
            Error::Unauthenticated(m) => (Code::Unauthenticated, m.to_owned()),
            Error::Forbidden(m) => (Code::PermissionDenied, m),
            Error::NotFound(m) => (Code::NotFound, m.to_owned()),
            Error::Conflict(m) => (Code::AlreadyExists, m.to_owned()),
            Error::Invalid(m) => (Code::InvalidArgument, m),
            Error::Precondition(m) => (Code::FailedPrecondition, m),
            Error::TooMany(m) => (Code::ResourceExhausted, m.to_owned()),
            Error::Unavailable(m) => (Code::Unavailable, m),
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (Code::Internal, "Internal error".to_owned())
            }
        };
        Status::new(code, message)
    }
}

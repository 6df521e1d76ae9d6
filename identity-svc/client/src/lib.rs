//! What other ashgate services share with identity-svc: Phoenix-style configuration parsing,
//! logging and signals, and credential verification with a revocation-evicted cache (a tower
//! [`AuthLayer`] for tonic servers, [`CredentialVerifier::verify_headers`] for axum).

pub mod address;
pub mod bearer;
pub mod env;
mod error;
pub mod http_server;
pub mod incoming;
mod layer;
mod principal;
pub mod process;
pub mod secret;
pub mod tls;
mod verifier;

pub use error::{AuthError, ClientError};
pub use layer::{AuthLayer, AuthService};
pub use principal::{CredentialKind, Principal, Role};
pub use verifier::{CacheStats, CredentialVerifier, INTERNAL_TOKEN_METADATA, STREAM_SILENCE, VerifierConfig};

//! What a client of identity-svc needs: credential verification with a revocation-evicted cache
//! (a tower [`AuthLayer`] for tonic servers, [`CredentialVerifier::verify_headers`] for axum),
//! the principal it yields, bearer parsing and client-address keys. What every service runs on
//! (configuration, secrets, TLS, the server loops, metrics) is `ashgate-runtime`.

pub mod address;
pub mod bearer;
mod error;
mod layer;
mod principal;
mod verifier;

pub use error::{AuthError, ClientError};
pub use layer::{AuthLayer, AuthService};
pub use principal::{CredentialKind, Principal, Role};
pub use verifier::{CacheStats, CredentialVerifier, INTERNAL_TOKEN_METADATA, STREAM_SILENCE, VerifierConfig};

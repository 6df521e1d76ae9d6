//! Authentication comes from `ashgate-identity-client`: the tower [`AuthLayer`] on gRPC, and
//! [`CredentialVerifier::verify_headers`] on HTTP. Re-exported here so the collector's modules
//! name one place.

pub use ashgate_identity_client::{
    AuthError, AuthLayer, CacheStats, ClientError, CredentialKind, CredentialVerifier, Principal, Role,
    VerifierConfig,
};

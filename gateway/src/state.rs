//! What every handler shares: configuration, the credential verifier, the upstream clients
//! and the metrics. Cheap to clone.

use std::ops::Deref;
use std::sync::Arc;

use ashgate_identity_client::CredentialVerifier;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::upstream::{CollectorClient, IdentityClient};

/// The shared state of one gateway.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// Validated configuration.
    pub config: GatewayConfig,
    /// Verifies bearer credentials and access cookies (cached, revocation-evicted).
    pub verifier: CredentialVerifier,
    /// identity-svc.
    pub identity: IdentityClient,
    /// collector-svc.
    pub collector: CollectorClient,
    /// Request counters for `/metrics`.
    pub metrics: Metrics,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(
        config: GatewayConfig,
        verifier: CredentialVerifier,
        identity: IdentityClient,
        collector: CollectorClient,
    ) -> Self {
        Self(Arc::new(Shared { config, verifier, identity, collector, metrics: Metrics::default() }))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

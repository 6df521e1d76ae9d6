//! What every handler shares: configuration, the credential verifier, the upstream clients
//! and the metrics. Cheap to clone.

use std::ops::Deref;
use std::sync::Arc;

use ashgate_identity_client::CredentialVerifier;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::oauth2::discovery::Providers;
use crate::oauth2::state::StateSigner;
use crate::rate_limit::RateLimiter;
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
    /// The OAuth2 / OIDC identity providers.
    pub oauth2: Providers,
    /// Signs the OAuth2 `state`.
    pub oauth2_state: StateSigner,
    /// Per-address limit on `/oauth2/{idp}/login` (Phoenix: 0.2/s, burst 6).
    pub oauth2_login_limit: RateLimiter,
    /// Per-address limit on `/oauth2/{idp}/tokens` (Phoenix: 0.5/s, burst 15).
    pub oauth2_callback_limit: RateLimiter,
    /// `POST /v1/traces` exports read and forwarded at once (`ASHGATE_GATEWAY_MAX_FORWARDS`).
    pub forwards: tokio::sync::Semaphore,
    /// The `Host` names this gateway answers to (`None`: any); see [`crate::security`].
    pub allowed_hosts: Option<Vec<String>>,
}

impl AppState {
    /// Wraps the parts (fails only when no HTTP client for the identity providers can be built).
    pub fn new(
        config: GatewayConfig,
        verifier: CredentialVerifier,
        identity: IdentityClient,
        collector: CollectorClient,
    ) -> Result<Self, String> {
        let oauth2 = Providers::new(&config.oauth2)?;
        let oauth2_state = StateSigner::new(config.internal_token.as_ref());
        Ok(Self(Arc::new(Shared {
            verifier,
            identity,
            collector,
            metrics: Metrics::default(),
            oauth2,
            oauth2_state,
            oauth2_login_limit: RateLimiter::new(0.2, 6.0),
            oauth2_callback_limit: RateLimiter::new(0.5, 15.0),
            forwards: tokio::sync::Semaphore::new(config.max_forwards),
            allowed_hosts: crate::security::allowed_hosts(&config),
            config,
        })))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

//! The configured providers and their discovered metadata (the OIDC discovery document and its
//! JWKS). Discovery is tried once at start-up; a provider that cannot be reached then is
//! retried in the background (and on demand when someone presses its button), so an identity
//! provider that is down never stops the gateway. Metadata is refreshed hourly, and at once
//! when an ID token is signed with a key the cached JWKS does not have (key rotation).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::JsonWebKeySet;
use openidconnect::core::CoreProviderMetadata;

use crate::oauth2::config::ProviderConfig;

/// How long one discovery attempt may take at start-up before the gateway serves anyway.
const STARTUP_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between background retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often good metadata is refreshed.
const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// On-demand attempts are spaced at least this much.
const ON_DEMAND_SPACING: Duration = Duration::from_secs(2);

/// One identity provider: its configuration and, once discovered, its metadata.
pub struct Provider {
    /// From the environment.
    pub config: ProviderConfig,
    metadata: RwLock<Option<Arc<CoreProviderMetadata>>>,
    attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Provider {
    fn new(config: ProviderConfig) -> Self {
        Self { config, metadata: RwLock::new(None), attempt: tokio::sync::Mutex::new(None) }
    }

    /// The metadata, if discovery has succeeded.
    pub fn metadata(&self) -> Option<Arc<CoreProviderMetadata>> {
        match self.metadata.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, metadata: CoreProviderMetadata) {
        let metadata = Some(Arc::new(metadata));
        match self.metadata.write() {
            Ok(mut guard) => *guard = metadata,
            Err(poisoned) => *poisoned.into_inner() = metadata,
        }
    }

    /// Fetches the discovery document and its JWKS, and keeps them.
    pub async fn discover(&self, http: &reqwest::Client) -> Result<(), String> {
        let url = self.config.discovery_url.as_str();
        let response = http.get(url).send().await.map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("cannot read {url}: {e}"))?;
        let metadata: CoreProviderMetadata = serde_json::from_slice(&body)
            .map_err(|e| format!("{url} is not an OpenID Connect discovery document: {e}"))?;
        let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), http).await.map_err(|e| {
            format!("cannot fetch the provider's keys ({}): {e}", metadata.jwks_uri().as_str())
        })?;
        self.store(metadata.set_jwks(jwks));
        Ok(())
    }

    /// The metadata, trying discovery now if there is none yet (one attempt at a time, spaced).
    pub async fn ensure(&self, http: &reqwest::Client) -> Result<Arc<CoreProviderMetadata>, String> {
        if let Some(metadata) = self.metadata() {
            return Ok(metadata);
        }
        self.rediscover(http).await
    }

    /// Discovery again (after an unknown signing key), one attempt at a time, spaced.
    pub async fn rediscover(&self, http: &reqwest::Client) -> Result<Arc<CoreProviderMetadata>, String> {
        let mut last = self.attempt.lock().await;
        let recent = last.is_some_and(|t| t.elapsed() < ON_DEMAND_SPACING);
        if !recent {
            *last = Some(Instant::now());
            if let Err(error) = self.discover(http).await {
                self.report_failure(&error);
            }
        }
        self.metadata().ok_or_else(|| "the provider's discovery document is not available".to_owned())
    }

    fn report_failure(&self, error: &str) {
        tracing::warn!(
            provider = %self.config.name,
            variable = %format!("PHOENIX_OAUTH2_{}_OIDC_CONFIG_URL", self.config.name.to_ascii_uppercase()),
            %error,
            "OIDC discovery failed; sign-in with this provider is unavailable until it succeeds"
        );
    }
}

/// Every configured provider, with the HTTP client used to talk to them.
#[derive(Debug)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
    /// Redirects are not followed (SSRF hardening, as the oauth2 crate recommends).
    pub http: reqwest::Client,
}

impl Providers {
    /// The providers of `configs` (nothing is fetched yet).
    pub fn new(configs: &[ProviderConfig]) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("OAuth2 HTTP client: {e}"))?;
        let list = configs.iter().cloned().map(|c| Arc::new(Provider::new(c))).collect();
        Ok(Self { list, http })
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.config.name == name)
    }

    /// All providers, sorted by name.
    pub fn all(&self) -> &[Arc<Provider>] {
        &self.list
    }

    /// One discovery attempt per provider (bounded in time), then background upkeep: retries
    /// with back-off for the ones that failed, hourly refreshes for all.
    pub async fn start(&self) {
        let attempts = self.list.iter().map(|provider| {
            let http = self.http.clone();
            async move {
                match tokio::time::timeout(STARTUP_WAIT, provider.discover(&http)).await {
                    Ok(Ok(())) => {
                        tracing::info!(provider = %provider.config.name, "OIDC provider discovered")
                    }
                    Ok(Err(error)) => provider.report_failure(&error),
                    Err(_) => provider.report_failure("no answer within 5 s"),
                }
            }
        });
        futures::future::join_all(attempts).await;
        for provider in &self.list {
            tokio::spawn(upkeep(Arc::downgrade(provider), self.http.clone()));
        }
    }
}

/// Retries discovery with back-off until it works, then refreshes it hourly.
async fn upkeep(provider: std::sync::Weak<Provider>, http: reqwest::Client) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let pause = match provider.upgrade() {
            None => return,
            Some(p) if p.metadata().is_some() => REFRESH_EVERY,
            Some(_) => backoff,
        };
        tokio::time::sleep(pause).await;
        let Some(provider) = provider.upgrade() else { return };
        let had_metadata = provider.metadata().is_some();
        match provider.discover(&http).await {
            Ok(()) if !had_metadata => {
                tracing::info!(provider = %provider.config.name, "OIDC provider discovered after retrying");
            }
            Ok(()) => {}
            Err(error) => {
                provider.report_failure(&error);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

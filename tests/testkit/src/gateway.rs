//! gateway fixtures: a real identity-svc, a real collector-svc and the gateway, all in this
//! process on loopback ports with fresh databases, and an HTTP client for the gateway.

use std::net::SocketAddr;
use std::time::Duration;

use ashgate_gateway::{Gateway, GatewayConfig};
use ashgate_identity_client::VerifierConfig;
use ashgate_runtime::env::Env;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::collector::CollectorFixture;
use crate::identity::{GATEWAY_TOKEN, INTERNAL_TOKEN, IdentityFixture};

/// Crates gateway tests use, re-exported so the root package needs no extra dev-dependencies.
pub mod deps {
    pub use ashgate_gateway;
    pub use base64;
    pub use reqwest;
}

/// The verifier configuration of every test service talking to `identity`.
pub fn verifier_config(identity: &IdentityFixture) -> VerifierConfig {
    VerifierConfig {
        identity_urls: vec![identity.url()],
        internal_token: Some(INTERNAL_TOKEN.to_owned()),
        max_cache_ttl: Duration::from_secs(60),
        negative_cache_ttl: Duration::from_secs(2),
        cache_capacity: 10_000,
        tls: Default::default(),
    }
}

/// identity-svc + collector-svc + gateway.
pub struct GatewayFixture {
    /// Where the gateway listens.
    pub addr: SocketAddr,
    /// Its configuration.
    pub config: GatewayConfig,
    /// The identity-svc behind it.
    pub identity: IdentityFixture,
    /// The collector-svc behind it.
    pub collector: CollectorFixture,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl GatewayFixture {
    /// Authentication on, default gateway settings.
    pub async fn start() -> Self {
        Self::start_with(true, |env| env).await
    }

    /// Authentication on or off everywhere; the gateway's environment adjusted by `configure`
    /// (e.g. `PHOENIX_CSRF_TRUSTED_ORIGINS`, `PHOENIX_HOST_ROOT_PATH`).
    pub async fn start_with(auth_enabled: bool, configure: impl FnOnce(Env) -> Env) -> Self {
        Self::start_configured(auth_enabled, |env| env, configure).await
    }

    /// Like [`GatewayFixture::start_with`], with identity-svc's environment adjusted too by
    /// `configure_identity` (e.g. `PHOENIX_SMTP_*`, `PHOENIX_DISABLE_BASIC_AUTH`).
    pub async fn start_configured(
        auth_enabled: bool,
        configure_identity: impl FnOnce(Env) -> Env,
        configure: impl FnOnce(Env) -> Env,
    ) -> Self {
        let auth = if auth_enabled { "true" } else { "false" };
        // Bound first, so identity-svc can be told the public URL its mailed links start with.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("gateway listener: {e}"));
        let origin = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}")));
        let identity = IdentityFixture::start_with(|env| {
            configure_identity(env.with("PHOENIX_ENABLE_AUTH", auth).with("PHOENIX_ROOT_URL", origin))
        })
        .await;
        // Named through the collector crate, which re-exports the identity client's verifier.
        let collector_verifier = if auth_enabled {
            let config = verifier_config(&identity);
            ashgate_collector::auth::CredentialVerifier::connect(config)
                .unwrap_or_else(|e| panic!("verifier: {e}"))
        } else {
            ashgate_collector::auth::CredentialVerifier::disabled()
        };
        let collector =
            CollectorFixture::start_with(collector_verifier, |config| config.auth_enabled = auth_enabled)
                .await;
        let env = Env::from_pairs([
            ("PHOENIX_ENABLE_AUTH", auth.to_owned()),
            ("ASHGATE_IDENTITY_URL", identity.url()),
            ("ASHGATE_INTERNAL_TOKEN", INTERNAL_TOKEN.to_owned()),
            ("ASHGATE_GATEWAY_TOKEN", GATEWAY_TOKEN.to_owned()),
            ("ASHGATE_COLLECTOR_GRPC_URLS", collector.grpc_endpoint()),
            ("ASHGATE_COLLECTOR_HTTP_URLS", format!("http://{}", collector.http_addr)),
        ]);
        let mut config =
            GatewayConfig::from_env(&configure(env)).unwrap_or_else(|e| panic!("gateway config: {e}"));
        config.listen = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let gateway =
            Gateway::connect_on(listener, config.clone()).await.unwrap_or_else(|e| panic!("gateway: {e}"));
        let addr = gateway.local_addr().unwrap_or_else(|e| panic!("gateway addr: {e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway.serve(async { drop(rx.await) }).await.unwrap_or_else(|e| panic!("gateway serves: {e}"));
        });
        Self { addr, config, identity, collector, shutdown: Some(tx), task: Some(task) }
    }

    /// identity-svc sending mail with `smtp_env` (`PHOENIX_SMTP_*`, e.g. from
    /// [`crate::smtp::SmtpServer::env`]) and `identity_extra` on top; the gateway offering
    /// password recovery (it gets `PHOENIX_SMTP_HOSTNAME` when `smtp_env` has it).
    pub async fn start_with_smtp(
        smtp_env: Vec<(&'static str, String)>,
        identity_extra: &[(&str, &str)],
    ) -> Self {
        let hostname = smtp_env.iter().find(|(k, _)| *k == "PHOENIX_SMTP_HOSTNAME").map(|(_, v)| v.clone());
        Self::start_configured(
            true,
            |mut env| {
                for (k, v) in smtp_env {
                    env = env.with(k, v);
                }
                for (k, v) in identity_extra {
                    env = env.with(k, *v);
                }
                env
            },
            move |env| match hostname {
                Some(host) => env.with("PHOENIX_SMTP_HOSTNAME", host),
                None => env,
            },
        )
        .await
    }

    /// `http://127.0.0.1:<port>` (the origin browsers see).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Absolute URL of `path` under the configured root path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.addr, self.config.root_path)
    }

    /// An HTTP client that keeps no cookies and follows no redirects, so tests see both.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"))
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for GatewayFixture {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

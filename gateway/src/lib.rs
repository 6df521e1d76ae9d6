//! ashgate gateway: the browser's and the script's front door on `PHOENIX_PORT` (6006).
//!
//! It holds no credentials of its own: sign-in, sessions, users and API keys are identity-svc
//! calls made with the end user's credential; spans are read from collector-svc and OTLP/HTTP
//! exports are forwarded to it. Layers: [`config`] → shared [`state`] → transports
//! ([`routes`] for REST, [`pages`] for HTML) with one error type ([`error`]).

pub mod body;
pub mod caller;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod global_id;
pub mod metrics;
pub mod oauth2;
pub mod pages;
pub mod proxies;
pub mod rate_limit;
pub mod routes;
pub mod security;
/// The HTTP server loop (header deadline, connection cap), shared with collector-svc.
pub use ashgate_identity_client::http_server as serve;
pub mod state;
pub mod timestamp;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use ashgate_identity_client::CredentialVerifier;
use ashgate_identity_client::env::Env;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use config::GatewayConfig;
pub use state::AppState;
pub use upstream::{CollectorClient, IdentityClient};

use crate::error::ApiError;

/// Why the gateway could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration or an unreachable dependency at start-up.
    #[error("{0}")]
    Startup(String),
    /// The listener failed.
    #[error("gateway server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// The routes of the gateway, all under `PHOENIX_HOST_ROOT_PATH` (and at `/` too, for
/// proxies that strip the prefix).
pub fn router(state: AppState) -> Router {
    let auth = Router::new()
        .route("/auth/login", post(routes::auth::login))
        .route("/auth/logout", get(routes::auth::logout))
        .route("/auth/refresh", post(routes::auth::refresh))
        .route("/auth/password-reset-email", post(routes::password_reset::request_email))
        .route("/auth/password-reset", post(routes::password_reset::reset))
        .route("/oauth2/{idp}/login", get(oauth2::login::start).post(oauth2::login::start))
        .route("/oauth2/{idp}/tokens", get(oauth2::callback::finish))
        .layer(axum::middleware::from_fn(routes::auth::add_no_store));
    let api = Router::new()
        .route("/v1/user", get(routes::users::get_viewer))
        .route("/v1/users", get(routes::users::list_users).post(routes::users::create_user))
        .route("/v1/users/api_keys", get(routes::api_keys::list_all_user_keys))
        .route("/v1/users/{user_id}", axum::routing::delete(routes::users::delete_user))
        .route("/v1/user/api_keys", get(routes::api_keys::list_own).post(routes::api_keys::create_own))
        .route("/v1/user/api_keys/{api_key_id}", axum::routing::delete(routes::api_keys::delete_own))
        .route(
            "/v1/system/api_keys",
            get(routes::api_keys::list_system).post(routes::api_keys::create_system),
        )
        .route("/v1/system/api_keys/{api_key_id}", axum::routing::delete(routes::api_keys::delete_system))
        .route("/v1/projects", get(routes::read::projects::list_projects))
        .route("/v1/projects/{project_identifier}", get(routes::read::projects::get_project))
        .route("/v1/projects/{project_identifier}/spans", get(routes::read::spans::list_spans))
        .route("/v1/projects/{project_identifier}/traces", get(routes::read::traces::list_traces))
        .route("/v1/traces", post(routes::traces::forward))
        // Answers carry keys, users and spans: no browser or proxy may keep them.
        .layer(axum::middleware::from_fn(routes::auth::add_no_store));
    let ops = Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .route("/arize_phoenix_version", get(routes::read::version::version));
    // Phoenix registers /auth/ldap/login only when LDAP is configured.
    let auth = if state.config.ldap_enabled {
        auth.merge(
            Router::new()
                .route("/auth/ldap/login", post(routes::ldap::login))
                .layer(axum::middleware::from_fn(routes::auth::add_no_store)),
        )
    } else {
        auth
    };
    let mut app = api.merge(ops).merge(pages::router());
    // Phoenix mounts /auth only when authentication is enabled.
    if state.config.auth_enabled {
        app = app.merge(auth);
    }
    let root = state.config.root_path.clone();
    let app = if root.is_empty() { app } else { Router::new().nest(&root, app.clone()).merge(app) };
    app.fallback(|| async { ApiError::NotFound("Not Found".into()) })
        .method_not_allowed_fallback(|| async {
            (http::StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        // Bodies are read with their own limits by each handler, within the body deadline.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn({
            let timeout = state.config.body_timeout;
            move |request, next| body::with_body_timeout(timeout, request, next)
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::enforce))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::check_host))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::headers))
        .layer(axum::middleware::from_fn(routes::read::version::add_version_header))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &http::Request<_>| {
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), user_id = tracing::field::Empty)
            }),
        )
        .with_state(state)
}

/// A gateway with its port bound, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    app: Router,
    limits: serve::ConnectionLimits,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("addr", &self.listener.local_addr().ok()).finish()
    }
}

impl Gateway {
    /// Binds `config.listen` (port 0 picks a free port) with these upstreams. The all-in-one
    /// binary passes in-process handles; [`Gateway::connect`] builds them from the config.
    pub async fn bind(
        config: GatewayConfig,
        verifier: CredentialVerifier,
        identity: IdentityClient,
        collector: CollectorClient,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Startup(format!("cannot bind {}: {e}", config.listen)))?;
        Self::on_listener(listener, config, verifier, identity, collector).await
    }

    /// Like [`Gateway::bind`], on a listener the caller bound already (so it can know the
    /// address, e.g. for `PHOENIX_ROOT_URL`, before the gateway starts).
    pub async fn on_listener(
        listener: TcpListener,
        config: GatewayConfig,
        verifier: CredentialVerifier,
        identity: IdentityClient,
        collector: CollectorClient,
    ) -> Result<Self, Error> {
        let limits = config.connection_limits;
        // Pages show the address actually bound (port 0 picks one).
        let mut config = config;
        config.listen = listener.local_addr().unwrap_or(config.listen);
        let state = AppState::new(config, verifier, identity, collector).map_err(Error::Startup)?;
        // One discovery attempt per identity provider (bounded); failures retry in the background.
        state.oauth2.start().await;
        let app = router(state);
        Ok(Self { listener, app, limits })
    }

    /// Binds with upstreams built from `config` (verifier included; needs a tokio runtime).
    pub async fn connect(config: GatewayConfig) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Startup(format!("cannot bind {}: {e}", config.listen)))?;
        Self::connect_on(listener, config).await
    }

    /// Like [`Gateway::connect`], on a listener the caller bound already.
    pub async fn connect_on(listener: TcpListener, config: GatewayConfig) -> Result<Self, Error> {
        let verifier = if config.auth_enabled {
            CredentialVerifier::connect(config.verifier_config())
                .map_err(|e| Error::Startup(format!("ASHGATE_IDENTITY_URL: {e}")))?
        } else {
            CredentialVerifier::disabled()
        };
        let (identity, collector) = upstream::connect(&config).map_err(Error::Startup)?;
        Self::on_listener(listener, config, verifier, identity, collector).await
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        serve::serve(self.listener, self.app, self.limits, shutdown).await?;
        Ok(())
    }
}

/// The whole `gateway` process: read the environment, serve until SIGINT or SIGTERM.
pub fn run_process(env: &Env) -> ExitCode {
    ashgate_identity_client::process::init_tracing();
    let config = match GatewayConfig::from_env(env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("gateway: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let gateway = Gateway::connect(config).await?;
        let addr = gateway.local_addr()?;
        tracing::info!(%addr, "gateway listening");
        println!("gateway listening http={addr}");
        gateway.serve(ashgate_identity_client::process::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

//! identity-svc: users, roles, passwords, sessions and API keys for ashgate, served over gRPC.
//!
//! Layers: [`config`] (environment) → domain ([`identity`] and the aggregate modules
//! `user`, `session`, `api_key`, `password_reset`, `oauth2`, [`ldap`], `verify`) → [`store`] (sqlx) and
//! [`grpc`] (tonic). Only binaries wire concrete things together.

pub mod api_key;
pub mod audit;
pub mod config;
pub mod error;
pub mod grpc;
pub mod health_and_metrics;
pub mod identity;
pub mod ldap;
pub mod limits;
pub mod mailer;
pub mod oauth2;
pub mod password;
pub mod password_reset;
pub mod principal;
pub mod revocation;
mod revocation_log;
pub mod rotation;
/// Secrets (shared with the other services through the client crate).
pub use ashgate_runtime::secret;
pub mod credential_check;
mod seed;
pub mod session;
pub mod store;
pub mod token;
pub mod user;

pub use config::IdentityConfig;
pub use grpc::IdentityServer;
pub use identity::Identity;

/// The whole identity-svc process (the `identity-svc` binary and `ashgate identity`): read the
/// environment (an identity-svc of its own needs the internal token), serve until SIGINT or
/// SIGTERM.
pub fn run_process(env: &ashgate_runtime::env::Env) -> std::process::ExitCode {
    let config = IdentityConfig::from_env(env).and_then(IdentityConfig::require_internal_token);
    ashgate_runtime::run("identity-svc", config, run)
}

/// Starts identity-svc with `config`: gRPC on `config.listen`, `/healthz`, `/readyz` and
/// `/metrics` on `config.ops_listen`; serves until `shutdown` completes, then stops taking
/// calls (readiness turns 503 first), lets in-flight calls finish and closes the database.
pub async fn run(
    config: IdentityConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (listen, ops_listen) = (config.listen, config.ops_listen);
    let identity = Identity::start(config).await?;
    let server = IdentityServer::bind(identity.clone(), listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (ASHGATE_IDENTITY_PORT)"))?;
    let ops = health_and_metrics::OpsServer::bind(identity.clone(), server.metrics(), ops_listen)
        .await
        .with_context(|| format!("cannot listen on {ops_listen} (ASHGATE_IDENTITY_METRICS_PORT)"))?;
    let (grpc_addr, http_addr) = (server.local_addr()?, ops.local_addr()?);
    tracing::info!(grpc = %grpc_addr, http = %http_addr, "identity-svc listening");
    // Machine-readable line for supervisors and tests, as collector-svc prints.
    println!("identity-svc listening grpc={grpc_addr} http={http_addr}");

    // `/readyz` outlives the gRPC server: it answers 503 "shutting down" while the last calls
    // finish, and stops only after them.
    let drain = ops.drain_handle();
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops_task = tokio::spawn(ops.serve(async move {
        let _ = ops_stopped.await;
    }));
    server
        .serve(async move {
            shutdown.await;
            tracing::info!("identity-svc shutting down: finishing in-flight calls");
            drain.start_draining();
        })
        .await?;
    let _ = stop_ops.send(());
    ops_task.await??;
    identity.shutdown().await;
    tracing::info!("identity-svc stopped");
    Ok(())
}

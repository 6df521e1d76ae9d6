//! identity-svc: users, roles, passwords, sessions and API keys for ashgate, served over gRPC.
//!
//! Layers: [`config`] (environment) → domain ([`identity`] and the aggregate modules
//! `user`, `session`, `api_key`, `password_reset`, `oauth2`, `verify`) → [`store`] (sqlx) and
//! [`grpc`] (tonic). Only binaries wire concrete things together.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![warn(missing_docs)]

pub mod api_key;
pub mod config;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod limits;
pub mod mailer;
pub mod oauth2;
pub mod password;
pub mod password_reset;
pub mod principal;
pub mod revocation;
pub mod secret;
mod seed;
pub mod session;
pub mod store;
pub mod token;
pub mod user;
pub mod verify;

pub use config::IdentityConfig;
pub use grpc::IdentityServer;
pub use identity::Identity;

/// Starts identity-svc with `config` and serves until `shutdown` completes.
pub async fn run(
    config: IdentityConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let identity = Identity::start(config).await?;
    let server = IdentityServer::bind(identity.clone(), listen).await?;
    tracing::info!(addr = %server.local_addr()?, "identity-svc listening (gRPC)");
    server.serve(shutdown).await?;
    identity.shutdown().await;
    Ok(())
}

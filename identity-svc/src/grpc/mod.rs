//! The gRPC transport: translates wire messages to domain calls and domain errors to
//! `Status`. No rules live here.

mod api_keys;
mod audit;
mod auth;
mod convert;
mod internal;
mod status;
mod users;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ashgate_identity_client::bearer::parse_bearer;
use ashgate_proto::identity::api_key_service_server::ApiKeyServiceServer;
use ashgate_proto::identity::audit_service_server::AuditServiceServer;
use ashgate_proto::identity::auth_service_server::AuthServiceServer;
use ashgate_proto::identity::internal_service_server::InternalServiceServer;
use ashgate_proto::identity::user_service_server::UserServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::{Request, Status};

use crate::health_and_metrics::Metrics;
use crate::identity::{Caller, Identity};
use crate::principal::CredentialKind;

/// Metadata carrying the internal service credential (`ASHGATE_INTERNAL_TOKEN`).
pub const INTERNAL_TOKEN_METADATA: &str = "x-ashgate-internal-token";
/// The largest request message identity-svc reads (its largest are a password and a name).
const MAX_MESSAGE: usize = 64 * 1024;
/// Calls in flight on one connection (verifiers multiplex their calls over one).
const MAX_STREAMS: u32 = 256;
/// The longest a shutdown waits for open connections once it has begun. In-flight calls are
/// short and revocation streams end at once, but hyper's graceful shutdown also waits for a
/// connection that has not sent its HTTP/2 preface yet (hyper issue #4170): one idle TCP
/// connection, a verifier reconnecting at that moment or anyone who can reach the port, would
/// otherwise hold a rolling restart until the orchestrator's SIGKILL.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Metadata carrying the gateway's own credential (`ASHGATE_GATEWAY_TOKEN`).
pub const GATEWAY_TOKEN_METADATA: &str = "x-ashgate-gateway-token";
/// Metadata with the end user's address, trusted only from the gateway.
pub const CLIENT_ADDR_METADATA: &str = "x-ashgate-client-addr";

/// identity-svc bound to a port, ready to serve.
pub struct IdentityServer {
    identity: Arc<Identity>,
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

impl IdentityServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(identity: Arc<Identity>, addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self { identity, listener: TcpListener::bind(addr).await?, metrics: Arc::default() })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What this replica's `/metrics` reports, the calls this server answers included.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` completes, then lets in-flight calls finish (for at most
    /// [`DRAIN_LIMIT`]).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let identity = self.identity;
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<AuthServiceServer<auth::AuthApi>>().await;
        health.set_serving::<InternalServiceServer<internal::InternalApi>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ashgate_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| {
                tracing::error!(error = %e, "reflection unavailable");
                e
            })
            .ok();
        let incoming = ashgate_runtime::incoming::capped(self.listener, identity.config().max_connections);
        // Revocation streams never end by themselves; graceful shutdown waits for every open
        // call, so they must be told to end when shutdown begins.
        let (closing_tx, closing) = tokio::sync::watch::channel(false);
        tokio::spawn(report_readiness(Arc::downgrade(&identity), health.clone(), closing.clone()));
        let mut drain_began = closing.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = closing_tx.send(true);
            // Health checks see the replica leave while its last calls finish.
            health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
            health.set_not_serving::<AuthServiceServer<auth::AuthApi>>().await;
            health.set_not_serving::<InternalServiceServer<internal::InternalApi>>().await;
        };
        let mut builder = Server::builder();
        if let Some(tls) = &identity.config().tls {
            builder = builder.tls_config(tls.tonic_config())?;
        }
        // Every message identity-svc takes is small; streams per connection are bounded, so one
        // connection holds at most MAX_STREAMS × MAX_MESSAGE of requests in memory.
        let serving = builder
            .http2_keepalive_interval(Some(Duration::from_secs(5)))
            .http2_keepalive_timeout(Some(Duration::from_secs(5)))
            .max_concurrent_streams(Some(MAX_STREAMS))
            .concurrency_limit_per_connection(MAX_STREAMS as usize)
            .layer(self.metrics.rpc.layer())
            .add_service(health_service)
            .add_optional_service(reflection)
            .add_service(
                AuthServiceServer::new(auth::AuthApi(identity.clone()))
                    .max_decoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                UserServiceServer::new(users::UserApi(identity.clone()))
                    .max_decoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                ApiKeyServiceServer::new(api_keys::ApiKeyApi(identity.clone()))
                    .max_decoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                AuditServiceServer::new(audit::AuditApi(identity.clone()))
                    .max_decoding_message_size(MAX_MESSAGE),
            )
            .add_service(
                InternalServiceServer::new(internal::InternalApi { identity, closing })
                    .max_decoding_message_size(MAX_MESSAGE),
            )
            .serve_with_incoming_shutdown(incoming, shutdown);
        tokio::pin!(serving);
        let drain_deadline = async move {
            // Never fires before shutdown begins (or if the server ends on its own first).
            if drain_began.wait_for(|closing| *closing).await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(DRAIN_LIMIT).await;
        };
        tokio::select! {
            result = &mut serving => result,
            () = drain_deadline => {
                tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open after the drain limit: stopping anyway");
                Ok(())
            }
        }
    }
}

/// Flips the gRPC health status with the database's reachability, until shutdown begins.
async fn report_readiness(
    identity: std::sync::Weak<Identity>,
    health: tonic_health::server::HealthReporter,
    closing: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if *closing.borrow() {
            return;
        }
        let Some(identity) = identity.upgrade() else { return };
        let ready = identity.is_ready().await;
        if *closing.borrow() {
            return;
        }
        let status = if ready {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        health.set_service_status("", status).await;
    }
}

/// The bearer credential of a request, if it has a well-formed one.
fn bearer<T>(request: &Request<T>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    parse_bearer(value).map(str::to_owned)
}

/// An ashgate service: it presents the internal token, or (mTLS) a client certificate the
/// TLS handshake verified against `ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE`.
fn is_internal<T>(identity: &Identity, request: &Request<T>) -> bool {
    let mutual_tls = identity.config().tls.as_ref().is_some_and(|tls| tls.is_mutual());
    if mutual_tls && request.peer_certs().is_some_and(|certs| !certs.is_empty()) {
        return true;
    }
    let presented = request.metadata().get(INTERNAL_TOKEN_METADATA).and_then(|v| v.to_str().ok());
    identity.is_internal_caller(presented)
}

/// The gateway, which alone may complete sign-ins and name client addresses: it presents
/// `ASHGATE_GATEWAY_TOKEN` (when none is configured, one process: any internal caller).
fn is_gateway<T>(identity: &Identity, request: &Request<T>) -> bool {
    match &identity.config().gateway_token {
        Some(token) => {
            let presented = request.metadata().get(GATEWAY_TOKEN_METADATA).and_then(|v| v.to_str().ok());
            presented.is_some_and(|p| token.matches(p))
        }
        None => is_internal(identity, request),
    }
}

/// Refuses (and records) callers of `rpc` that are not the gateway.
async fn require_gateway<T>(
    identity: &Identity,
    request: &Request<T>,
    rpc: &'static str,
) -> Result<(), Status> {
    if is_gateway(identity, request) {
        return Ok(());
    }
    identity.internal_credential_refused(rpc, "gateway", client_addr(identity, request)).await;
    Err(Status::permission_denied("This RPC is only for the ashgate gateway"))
}

/// The end user's address: what the gateway says (if it proves it is the gateway), else the peer.
fn client_addr<T>(identity: &Identity, request: &Request<T>) -> Option<IpAddr> {
    if is_gateway(identity, request)
        && let Some(addr) =
            request.metadata().get(CLIENT_ADDR_METADATA).and_then(|v| v.to_str().ok()?.parse().ok())
    {
        return Some(addr);
    }
    request.remote_addr().map(|a| a.ip())
}

/// Authenticates the caller of a public RPC.
async fn caller<T>(identity: &Identity, request: &Request<T>) -> Result<Caller, Status> {
    authenticated(identity, request, false).await
}

/// Authenticates the caller of a public RPC (`during_reset`: see [`Identity::authenticate`]),
/// recording a use of the admin secret.
async fn authenticated<T>(
    identity: &Identity,
    request: &Request<T>,
    during_reset: bool,
) -> Result<Caller, Status> {
    let principal = identity.authenticate(bearer(request).as_deref(), during_reset).await?;
    let client_addr = client_addr(identity, request);
    if principal.kind == CredentialKind::AdminSecret {
        identity.admin_secret_used(client_addr, "api").await;
    }
    Ok(Caller { principal, client_addr })
}

/// Refuses (and records) callers of `rpc` without the internal service credential.
async fn require_internal<T>(
    identity: &Identity,
    request: &Request<T>,
    rpc: &'static str,
) -> Result<(), Status> {
    if is_internal(identity, request) {
        return Ok(());
    }
    identity.internal_credential_refused(rpc, "internal", client_addr(identity, request)).await;
    Err(Status::permission_denied("This RPC is only for ashgate services"))
}

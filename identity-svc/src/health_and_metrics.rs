//! Operations over HTTP for identity-svc running as its own process: `/healthz` (the process
//! answers), `/readyz` (it can serve: database reachable, not shutting down) and `/metrics`
//! (OpenMetrics text, by `prometheus-client`), on `ASHGATE_IDENTITY_METRICS_PORT`.
//!
//! Redis is reported, not required: without it a replica still verifies every credential
//! against the database (it only stops caching), so taking every replica out of rotation when
//! Redis is down would turn a slowdown into an outage.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ashgate_runtime::metrics::{self, GrpcMetrics, Registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use tokio::net::TcpListener;

use crate::identity::Identity;
use crate::rotation::SecretStatus;

/// What identity-svc's `/metrics` reports: the gRPC calls it answered (by method and real
/// status, with latency histograms) and gauges read at scrape time.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Recorded by the gRPC server's layer.
    pub rpc: Arc<GrpcMetrics>,
    ready: Gauge,
    database_up: Gauge,
    revocations_reliable: Gauge,
    uptime_seconds: Gauge,
    revocations: Counter,
    secret_dependents: Family<SecretDependents, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretDependents {
    secret_id: String,
    role: &'static str,
    credential: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ashgate_identity");
        let rpc = GrpcMetrics::register(&mut registry);
        let metrics = Self {
            rpc,
            ready: Gauge::default(),
            database_up: Gauge::default(),
            revocations_reliable: Gauge::default(),
            uptime_seconds: Gauge::default(),
            revocations: Counter::default(),
            secret_dependents: Family::default(),
            registry: Registry::default(),
        };
        registry.register("ready", "1 when this replica can serve calls", metrics.ready.clone());
        registry.register("database_up", "1 when the database answers", metrics.database_up.clone());
        registry.register(
            "revocations_reliable",
            "1 when every revocation is heard (no Redis configured, or its subscription is up)",
            metrics.revocations_reliable.clone(),
        );
        registry.register(
            "uptime_seconds",
            "Seconds since this replica started serving",
            metrics.uptime_seconds.clone(),
        );
        registry.register(
            "revocations",
            "Revocations delivered to this replica's verifiers",
            metrics.revocations.clone(),
        );
        registry.register(
            "secret_dependents",
            "Live sessions and API keys signed by each secret (by id; retire a previous secret at 0)",
            metrics.secret_dependents.clone(),
        );
        Self { registry, ..metrics }
    }
}

impl Metrics {
    /// The registry rendered after the gauges are read.
    fn render(
        &self,
        readiness: Readiness,
        uptime: Duration,
        revocations: u64,
        secrets: Option<&SecretStatus>,
    ) -> String {
        self.ready.set(i64::from(readiness.is_ready()));
        self.database_up.set(i64::from(readiness.database));
        self.revocations_reliable.set(i64::from(readiness.revocations_reliable));
        self.uptime_seconds.set(i64::try_from(uptime.as_secs()).unwrap_or(i64::MAX));
        // The epoch only grows; the counter mirrors it.
        self.revocations.inner().store(revocations, Ordering::Relaxed);
        // Counted afresh at most every 30 s; left out (not zero) when the database did not answer.
        self.secret_dependents.clear();
        // Ids are written by identity-svc as hex; anything else never reaches a label.
        let secrets = secrets.iter().flat_map(|status| &status.secrets);
        for s in secrets.filter(|s| s.secret_id.chars().all(|c| c.is_ascii_hexdigit())) {
            for (credential, n) in [("sessions", s.sessions), ("api_keys", s.api_keys)] {
                let labels =
                    SecretDependents { secret_id: s.secret_id.clone(), role: s.role.as_str(), credential };
                self.secret_dependents.get_or_create(&labels).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        ashgate_runtime::metrics::render(&self.registry)
    }
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The database answers.
    pub database: bool,
    /// Every revocation is heard: no Redis configured, or its subscription is up.
    pub revocations_reliable: bool,
    /// Shutting down: finishing in-flight calls, taking no new ones.
    pub draining: bool,
}

impl Readiness {
    /// Whether a load balancer should send calls here.
    pub fn is_ready(&self) -> bool {
        self.database && !self.draining
    }
}

/// The HTTP operations listener, bound and not yet serving.
pub struct OpsServer {
    listener: TcpListener,
    state: OpsState,
}

#[derive(Clone)]
struct OpsState {
    identity: Arc<Identity>,
    metrics: Arc<Metrics>,
    draining: Arc<AtomicBool>,
    started: Instant,
    /// The last count of what depends on each secret, and when it was taken.
    secret_status: Arc<tokio::sync::Mutex<Option<(Instant, SecretStatus)>>>,
}

impl OpsServer {
    /// Binds `addr` for `identity`, reporting the calls counted in `rpc`.
    pub async fn bind(
        identity: Arc<Identity>,
        metrics: Arc<Metrics>,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let state = OpsState {
            identity,
            metrics,
            draining: Arc::default(),
            started: Instant::now(),
            secret_status: Arc::default(),
        };
        Ok(Self { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that makes `/readyz` answer 503 from now on (shutdown has begun).
    pub fn drain_handle(&self) -> DrainHandle {
        DrainHandle(self.state.draining.clone())
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.state);
        // Not `axum::serve`: it runs hyper without a timer, so idle and half-sent connections
        // (slowloris) would live for ever.
        ashgate_runtime::http_server::serve(
            self.listener,
            app,
            ashgate_runtime::http_server::ConnectionLimits::default(),
            shutdown,
        )
        .await
    }
}

/// Marks the replica as draining (see [`OpsServer::drain_handle`]).
#[derive(Clone, Debug)]
pub struct DrainHandle(Arc<AtomicBool>);

impl DrainHandle {
    /// From now on `/readyz` answers 503.
    pub fn start_draining(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Longest a readiness probe waits for the database (a health check must answer promptly; a
/// database that slow counts as down).
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn readiness(state: &OpsState) -> Readiness {
    let database = tokio::time::timeout(DATABASE_PROBE_TIMEOUT, state.identity.is_ready()).await;
    Readiness {
        database: database.unwrap_or(false),
        revocations_reliable: state.identity.revocations().is_reliable(),
        draining: state.draining.load(Ordering::Acquire),
    }
}

/// `GET /readyz`: 200 when calls can be served, else 503; the body names each check.
async fn readyz(State(state): State<OpsState>) -> Response {
    let readiness = readiness(&state).await;
    let redis = match (state.identity.config().redis_url.is_some(), readiness.revocations_reliable) {
        (false, _) => "not configured",
        (true, true) => "ok",
        (true, false) => "unreachable (caching off; revocations still hold through the database)",
    };
    let body = format!(
        "{}\ndatabase: {}\nredis: {redis}\n",
        if readiness.is_ready() { "ready" } else { "not ready" },
        if readiness.database { "ok" } else { "unreachable" },
    );
    let body = if readiness.draining { format!("{body}shutting down\n") } else { body };
    let status = if readiness.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(CACHE_CONTROL, "no-store")], body).into_response()
}

/// `GET /metrics`.
async fn metrics(State(state): State<OpsState>) -> Response {
    let readiness = readiness(&state).await;
    let status = secret_status(&state).await;
    let text = state.metrics.render(
        readiness,
        state.started.elapsed(),
        state.identity.revocations().epoch(),
        status.as_ref(),
    );
    ([(CONTENT_TYPE, metrics::CONTENT_TYPE), (CACHE_CONTROL, "no-store")], text).into_response()
}

/// How long a count of live credentials per secret is reused: two table scans are too much
/// for every scrape, and retiring a secret is decided over days.
const SECRET_STATUS_TTL: Duration = Duration::from_secs(30);

/// The count of live credentials per secret, at most [`SECRET_STATUS_TTL`] old; `None` when
/// the database does not answer in time (the gauge is then left out, not reported as zero).
async fn secret_status(state: &OpsState) -> Option<SecretStatus> {
    let mut cached = state.secret_status.lock().await;
    if let Some((at, status)) = cached.as_ref()
        && at.elapsed() < SECRET_STATUS_TTL
    {
        return Some(status.clone());
    }
    let status =
        tokio::time::timeout(DATABASE_PROBE_TIMEOUT, state.identity.secret_status()).await.ok()?.ok()?;
    *cached = Some((Instant::now(), status.clone()));
    Some(status)
}

//! Operations over HTTP for identity-svc running as its own process: `/healthz` (the process
//! answers), `/readyz` (it can serve: database reachable, not shutting down) and `/metrics`
//! (Prometheus text), on `ASHGATE_IDENTITY_METRICS_PORT`.
//!
//! Redis is reported, not required: without it a replica still verifies every credential
//! against the database (it only stops caching), so taking every replica out of rotation when
//! Redis is down would turn a slowdown into an outage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use tokio::net::TcpListener;

use crate::identity::Identity;
use crate::rotation::SecretStatus;

/// Counters of the gRPC transport, shared with the `/metrics` route.
#[derive(Debug, Default)]
pub struct RpcMetrics {
    methods: Mutex<BTreeMap<String, MethodStats>>,
}

/// Calls of one method: how many answered each status code, and their total time.
#[derive(Debug, Default)]
struct MethodStats {
    by_code: BTreeMap<i32, u64>,
    total: Duration,
}

impl RpcMetrics {
    /// One answered call of `method` (a gRPC path) with `code` after `elapsed` (until the
    /// response headers, so a stream counts its start).
    pub fn record(&self, method: &str, code: i32, elapsed: Duration) {
        // tonic answers UNIMPLEMENTED for every path it does not route, and no ashgate method
        // does: only routed paths become labels, so a client can neither grow the label set
        // nor put characters in a label that would break the exposition format.
        let method = if code == tonic::Code::Unimplemented as i32 { "other" } else { method };
        let Ok(mut methods) = self.methods.lock() else { return };
        if !methods.contains_key(method) {
            methods.insert(method.to_owned(), MethodStats::default());
        }
        if let Some(stats) = methods.get_mut(method) {
            *stats.by_code.entry(code).or_default() += 1;
            stats.total += elapsed;
        }
    }

    fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP ashgate_identity_rpc_calls_total gRPC calls answered, by method and status code.\n",
        );
        out.push_str("# TYPE ashgate_identity_rpc_calls_total counter\n");
        let Ok(methods) = self.methods.lock() else { return };
        for (method, stats) in methods.iter() {
            for (code, count) in &stats.by_code {
                let _ = writeln!(
                    out,
                    "ashgate_identity_rpc_calls_total{{method=\"{method}\",code=\"{}\"}} {count}",
                    code_name(*code)
                );
            }
        }
        out.push_str("# HELP ashgate_identity_rpc_duration_seconds Time to answer gRPC calls, by method.\n");
        out.push_str("# TYPE ashgate_identity_rpc_duration_seconds summary\n");
        for (method, stats) in methods.iter() {
            let _ = writeln!(
                out,
                "ashgate_identity_rpc_duration_seconds_sum{{method=\"{method}\"}} {:.6}",
                stats.total.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "ashgate_identity_rpc_duration_seconds_count{{method=\"{method}\"}} {}",
                stats.by_code.values().sum::<u64>()
            );
        }
    }
}

/// The gRPC code's name, as Prometheus labels usually carry it.
fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A tower layer for the tonic server that counts calls into [`RpcMetrics`].
#[derive(Clone)]
pub struct RpcMetricsLayer(pub Arc<RpcMetrics>);

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService { inner, metrics: self.0.clone() }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // A Uri clone shares its bytes: no allocation per call.
        let uri = request.uri().clone();
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // tonic answers errors of unary calls "trailers-only": the status is in the headers.
            // Otherwise it is in the trailers, after the body, and the call counts as OK here.
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                Err(_) => tonic::Code::Unknown as i32,
            };
            metrics.record(uri.path(), code, started.elapsed());
            response
        })
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
    rpc: Arc<RpcMetrics>,
    draining: Arc<AtomicBool>,
    started: Instant,
    /// The last count of what depends on each secret, and when it was taken.
    secret_status: Arc<tokio::sync::Mutex<Option<(Instant, SecretStatus)>>>,
}

impl OpsServer {
    /// Binds `addr` for `identity`, reporting the calls counted in `rpc`.
    pub async fn bind(
        identity: Arc<Identity>,
        rpc: Arc<RpcMetrics>,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let state = OpsState {
            identity,
            rpc,
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
        ashgate_identity_client::http_server::serve(
            self.listener,
            app,
            ashgate_identity_client::http_server::ConnectionLimits::default(),
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
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
    };
    gauge("ashgate_identity_ready", "1 when this replica can serve calls.", u64::from(readiness.is_ready()));
    gauge("ashgate_identity_database_up", "1 when the database answers.", u64::from(readiness.database));
    gauge(
        "ashgate_identity_revocations_reliable",
        "1 when every revocation is heard (no Redis configured, or its subscription is up).",
        u64::from(readiness.revocations_reliable),
    );
    gauge(
        "ashgate_identity_uptime_seconds",
        "Seconds since this replica started serving.",
        state.started.elapsed().as_secs(),
    );
    let _ = write!(
        out,
        "# HELP ashgate_identity_revocations_total Revocations delivered to this replica's verifiers.\n\
         # TYPE ashgate_identity_revocations_total counter\nashgate_identity_revocations_total {}\n",
        state.identity.revocations().epoch()
    );
    if let Some(status) = secret_status(&state).await {
        render_secret_status(&status, &mut out);
    }
    state.rpc.render(&mut out);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"), (CACHE_CONTROL, "no-store")], out)
        .into_response()
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

fn render_secret_status(status: &SecretStatus, out: &mut String) {
    out.push_str(
        "# HELP ashgate_identity_secret_dependents Live sessions and API keys signed by each secret (by id; retire a previous secret at 0).\n\
         # TYPE ashgate_identity_secret_dependents gauge\n",
    );
    // Ids are written by identity-svc as hex; anything else never reaches a label.
    for s in status.secrets.iter().filter(|s| s.secret_id.chars().all(|c| c.is_ascii_hexdigit())) {
        for (credential, n) in [("sessions", s.sessions), ("api_keys", s.api_keys)] {
            let _ = writeln!(
                out,
                "ashgate_identity_secret_dependents{{secret_id=\"{}\",role=\"{}\",credential=\"{credential}\"}} {n}",
                s.secret_id,
                s.role.as_str()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_do_not_grow_the_label_set() {
        let metrics = RpcMetrics::default();
        for i in 0..500 {
            metrics.record(&format!("/attacker.{i}/X"), 12, Duration::from_millis(1));
        }
        metrics.record("/ashgate.identity.v1.AuthService/Login", 0, Duration::from_millis(2));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("method=\"other\",code=\"UNIMPLEMENTED\"} 500"), "{out}");
        assert!(out.contains("method=\"/ashgate.identity.v1.AuthService/Login\",code=\"OK\"} 1"), "{out}");
        assert!(out.lines().count() < 12, "{out}");
    }
}

//! Request metrics shared by every ashgate server, kept by `prometheus-client`: per gRPC method
//! and per HTTP route, a counter of answered calls by their real status and a latency
//! histogram.
//!
//! gRPC statuses are read where tonic puts them: in the response headers when an error is
//! answered "trailers-only", otherwise in the trailers after the body, so an error a streaming
//! or unary call sends in its trailers is not counted as OK. A call whose response the client
//! drops before the trailers counts as `CANCELLED`.
//!
//! Labels come only from what the server knows, never from what a client sends: a gRPC path
//! the server does not route is `other`, an HTTP request no route matched is `unmatched`, an
//! unusual HTTP method is `OTHER`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
pub use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry in the OpenMetrics text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(8192);
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(%error, "metrics could not be rendered");
    }
    out
}

/// Latency buckets: 0.5 ms doubling to about 16 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCall {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcMethod {
    method: String,
}

/// Calls answered by a tonic server: `<prefix>_rpc_calls_total{method,code}` and
/// `<prefix>_rpc_duration_seconds{method}`.
#[derive(Debug)]
pub struct GrpcMetrics {
    calls: Family<RpcCall, Counter>,
    duration: Family<RpcMethod, Histogram, fn() -> Histogram>,
}

impl GrpcMetrics {
    /// Registers the two families in `registry` (whose prefix names the service).
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
        };
        registry.register(
            "rpc_calls",
            "gRPC calls answered, by method and status code",
            metrics.calls.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time from a call's arrival to its status, by method",
            metrics.duration.clone(),
        );
        Arc::new(metrics)
    }

    /// One answered call of `method` (a gRPC path) with `code` after `elapsed`.
    pub fn record(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        // tonic answers UNIMPLEMENTED for every path it does not route, and no ashgate method
        // does: only routed paths become labels.
        let method = if code == tonic::Code::Unimplemented { "other" } else { method };
        self.calls.get_or_create(&RpcCall { method: method.to_owned(), code: code_name(code) }).inc();
        self.duration.get_or_create(&RpcMethod { method: method.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// A tower layer for a tonic server that records every call here.
    pub fn layer(self: &Arc<Self>) -> GrpcMetricsLayer {
        GrpcMetricsLayer(self.clone())
    }
}

/// The gRPC code's name, as Prometheus labels usually carry it.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
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

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

/// See [`GrpcMetrics::layer`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer(Arc<GrpcMetrics>);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService { inner, metrics: self.0.clone() }
    }
}

/// See [`GrpcMetrics::layer`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<StatusBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call {
            path: request.uri().path().to_owned(),
            started: Instant::now(),
            metrics: self.metrics.clone(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    // Trailers-only: the status is already here and the body carries nothing.
                    let pending = match grpc_status(response.headers()) {
                        Some(code) => {
                            call.finish(code);
                            None
                        }
                        None => Some(call),
                    };
                    Ok(response.map(|inner| StatusBody { inner, call: pending }))
                }
                Err(error) => {
                    call.finish(tonic::Code::Unknown);
                    Err(error)
                }
            }
        })
    }
}

/// A call whose status is not known yet.
#[derive(Debug)]
struct Call {
    path: String,
    started: Instant,
    metrics: Arc<GrpcMetrics>,
}

impl Call {
    fn finish(self, code: tonic::Code) {
        self.metrics.record(&self.path, code, self.started.elapsed());
    }
}

/// A response body that records its call's status when the trailers pass (or `CANCELLED` when
/// dropped before them).
#[derive(Debug)]
pub struct StatusBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: Body + Unpin> Body for StatusBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status)
                    && let Some(call) = this.call.take()
                {
                    call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Internal);
                }
            }
            Poll::Ready(None) => {
                // Ended without a status: HTTP/2 reset the stream or the service misbehaved.
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for StatusBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(tonic::Code::Cancelled);
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpCall {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRoute {
    route: String,
}

/// Requests answered by an axum router: `<prefix>_http_requests_total{route,method,status}` and
/// `<prefix>_http_request_duration_seconds{route}` (until the response headers).
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<HttpCall, Counter>,
    duration: Family<HttpRoute, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    /// Registers the two families in `registry` (whose prefix names the service).
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response headers, by route",
            metrics.duration.clone(),
        );
        Arc::new(metrics)
    }

    /// One answered request.
    pub fn record(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        };
        self.requests.get_or_create(&HttpCall { route: route.to_owned(), method, status }).inc();
        self.duration.get_or_create(&HttpRoute { route: route.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// axum middleware (`Router::layer(from_fn_with_state(metrics, HttpMetrics::middleware))`):
    /// the route is the matched path pattern, never the request's own path.
    pub async fn middleware(State(metrics): State<Arc<Self>>, request: Request, next: Next) -> Response {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
        let method = request.method().clone();
        let response = next.run(request).await;
        let route = route.as_deref().unwrap_or("unmatched");
        metrics.record(route, &method, response.status().as_u16(), started.elapsed());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_do_not_grow_the_label_set() {
        let mut registry = Registry::with_prefix("test");
        let metrics = GrpcMetrics::register(&mut registry);
        for i in 0..500 {
            metrics.record(&format!("/attacker.{i}/X"), tonic::Code::Unimplemented, Duration::from_millis(1));
        }
        metrics.record("/ashgate.identity.v1.AuthService/Login", tonic::Code::Ok, Duration::from_millis(2));
        let out = render(&registry);
        assert!(out.contains("test_rpc_calls_total{method=\"other\",code=\"UNIMPLEMENTED\"} 500"), "{out}");
        assert!(
            out.contains(
                "test_rpc_calls_total{method=\"/ashgate.identity.v1.AuthService/Login\",code=\"OK\"} 1"
            ),
            "{out}"
        );
        assert!(out.contains("test_rpc_duration_seconds_count{method=\"other\"} 500"), "{out}");
        assert!(out.lines().count() < 60, "{out}");
    }
}

//! Receiving: where an export arrives. OTLP/gRPC `TraceService/Export` ([`grpc`]) and
//! OTLP/HTTP `POST /v1/traces` ([`http`], which also serves `/metrics` and health) authenticate
//! the caller, take a decode slot, read the body within its deadline and hand it to
//! [`crate::decode`], then to [`crate::pipeline`].

mod deadline;
pub mod grpc;
pub mod http;

use std::marker::PhantomData;
use std::task::{Context, Poll};

pub use grpc::OtlpTraceService;
pub use http::{HttpState, router};

/// Gives a layered service the gRPC name of the service it wraps, so that services with
/// different layers (viewers refused on export, allowed on queries) share one server.
pub struct Named<S, N> {
    inner: S,
    name: PhantomData<fn() -> N>,
}

impl<S, N> Named<S, N> {
    /// Wraps `inner` under the name of `N`.
    pub fn new(inner: S) -> Self {
        Self { inner, name: PhantomData }
    }
}

impl<S: Clone, N> Clone for Named<S, N> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone())
    }
}

impl<S, N: tonic::server::NamedService> tonic::server::NamedService for Named<S, N> {
    const NAME: &'static str = N::NAME;
}

impl<S, N, R> tower::Service<R> for Named<S, N>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}

//! A tower [`Layer`] that authenticates every gRPC call of a tonic server before the service
//! sees it (tonic interceptors are synchronous; verification must await identity-svc).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::verifier::CredentialVerifier;

/// Authenticates calls with a [`CredentialVerifier`]; the [`crate::Principal`] lands in the
/// request's extensions. Rejections are gRPC statuses (UNAUTHENTICATED, PERMISSION_DENIED,
/// UNAVAILABLE) answered without calling the service.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: CredentialVerifier,
    deny_viewers: bool,
    public_prefixes: Vec<&'static str>,
}

impl AuthLayer {
    /// Every call must carry a credential that verifies. gRPC health checks stay public.
    pub fn new(verifier: CredentialVerifier) -> Self {
        Self { verifier, deny_viewers: false, public_prefixes: vec!["/grpc.health.v1.Health/"] }
    }

    /// Also refuse viewers (read-only principals), e.g. on ingestion.
    pub fn deny_viewers(mut self) -> Self {
        self.deny_viewers = true;
        self
    }

    /// Paths (gRPC `/package.Service/`) that need no credential.
    pub fn allow_unauthenticated(mut self, prefix: &'static str) -> Self {
        self.public_prefixes.push(prefix);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, layer: self.clone() }
    }
}

/// The service [`AuthLayer`] wraps around a tonic server.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, R> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let path = request.uri().path();
            if layer.public_prefixes.iter().any(|p| path.starts_with(p)) {
                return inner.call(request).await;
            }
            let verdict = layer.verifier.verify_headers(request.headers()).await;
            match verdict.and_then(|p| p.check(layer.deny_viewers).map(|()| p)) {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(error.to_status().into_http()),
            }
        })
    }
}

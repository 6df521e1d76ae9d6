//! Tower layer in front of the OTLP export service (after auth): refuses at once while the queue
//! is full, holds a decode slot while tonic reads and decodes the body, and reports an oversized
//! message as RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE; OTLP exporters and the issue expect
//! RESOURCE_EXHAUSTED).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::HeaderValue;

use crate::error::Error;
use crate::ingest::{DecodeSlot, Ingest};

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct ExportGuardLayer {
    ingest: Arc<Ingest>,
}

impl ExportGuardLayer {
    /// Guards exports handled by `ingest`.
    pub fn new(ingest: Arc<Ingest>) -> Self {
        Self { ingest }
    }
}

impl<S> tower::Layer<S> for ExportGuardLayer {
    type Service = ExportGuard<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ExportGuard { inner, ingest: self.ingest.clone() }
    }
}

/// Service made by [`ExportGuardLayer`].
#[derive(Clone, Debug)]
pub struct ExportGuard<S> {
    inner: S,
    ingest: Arc<Ingest>,
}

const GRPC_STATUS: &str = "grpc-status";
const OUT_OF_RANGE: &str = "11";

impl<S, B> tower::Service<http::Request<B>> for ExportGuard<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let ingest = self.ingest.clone();
        Box::pin(async move {
            // Do not read and decode a body the queue could not take anyway.
            if ingest.queue.is_full() {
                let error = ingest.queue.full_error();
                ingest.metrics.record_refused(&error, None);
                return Ok(tonic::Status::from(error).into_http());
            }
            match ingest.decode_permit().await {
                Ok(permit) => {
                    request.extensions_mut().insert(DecodeSlot::new(permit));
                }
                Err(error) => return Ok(tonic::Status::from(error).into_http()),
            }
            let mut response = inner.call(request).await?;
            // The handler never answers OUT_OF_RANGE, so this is tonic's message-size check.
            if response.headers().get(GRPC_STATUS).is_some_and(|s| s == OUT_OF_RANGE) {
                let error = Error::TooLarge { limit: ingest.max_message_bytes };
                ingest.metrics.record_refused(&error, None);
                let headers = response.headers_mut();
                headers.insert(GRPC_STATUS, HeaderValue::from(tonic::Code::ResourceExhausted as i32));
                if let Ok(message) = HeaderValue::from_str(&error.to_string()) {
                    headers.insert("grpc-message", message);
                }
            }
            Ok(response)
        })
    }
}

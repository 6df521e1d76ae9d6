//! Tower layer in front of the OTLP export service (after auth): refuses at once while the queue
//! is full, holds a decode slot while tonic reads and decodes the body, gives the body a deadline
//! (DEADLINE_EXCEEDED: a client trickling bytes must not hold the slot for ever), and reports an
//! oversized message as RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE; OTLP exporters and the issue
//! expect RESOURCE_EXHAUSTED).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::future::BoxFuture;
use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use tonic::codegen::StdError;

use crate::error::Error;
use crate::ingest::{DecodeSlot, Ingest};
use crate::metrics::Metrics;

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
    S: tower::Service<http::Request<DeadlineBody<B>>, Response = http::Response<tonic::body::Body>>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
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
            let permit = match ingest.decode_permit().await {
                Ok(permit) => permit,
                Err(error) => return Ok(tonic::Status::from(error).into_http()),
            };
            // The deadline runs from here: the body is read while the slot is held.
            let mut request =
                request.map(|body| DeadlineBody::new(body, ingest.body_timeout, ingest.metrics.clone()));
            request.extensions_mut().insert(DecodeSlot::new(permit));
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

/// A request body that fails with DEADLINE_EXCEEDED once `timeout` has passed without it ending.
pub struct DeadlineBody<B> {
    inner: Pin<Box<B>>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl<B> DeadlineBody<B> {
    fn new(inner: B, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Box::pin(inner),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            metrics: Some(metrics),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body,
    B::Error: Into<StdError>,
{
    type Data = B::Data;
    type Error = StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, StdError>>> {
        // What has arrived is passed on even when the deadline has just passed.
        if let Poll::Ready(frame) = self.inner.as_mut().poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        ready!(self.deadline.as_mut().poll(cx));
        let error = Error::BodyTimeout { secs: self.timeout.as_secs() };
        if let Some(metrics) = self.metrics.take() {
            metrics.record_refused(&error, None);
        }
        // tonic reads a Status out of a body error as it is.
        Poll::Ready(Some(Err(Box::new(tonic::Status::from(error)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

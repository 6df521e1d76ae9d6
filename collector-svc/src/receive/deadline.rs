//! A request body with a deadline: a client trickling an export, or sending its headers and
//! then nothing, must not hold a decode slot (and every export waiting for one) for ever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use tonic::codegen::StdError;

use crate::error::Error;
use crate::metrics::Metrics;

/// A request body that fails with DEADLINE_EXCEEDED once `timeout` has passed without it ending.
pub struct DeadlineBody<B> {
    inner: Pin<Box<B>>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl<B> DeadlineBody<B> {
    pub(super) fn new(inner: B, timeout: Duration, metrics: Arc<Metrics>) -> Self {
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

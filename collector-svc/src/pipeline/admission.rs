//! One export, whatever the transport: convert, queue, wait for the commit, count.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Principal;
use crate::decode::convert::{Sender, convert_export, count_spans};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pipeline::queue::IngestQueue;

/// Exports larger than this are converted on the blocking pool, not on an async worker.
const INLINE_CONVERT_SPANS: usize = 2_000;

/// What an accepted export reports back (`partial_success`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Spans committed.
    pub accepted_spans: u64,
    /// Invalid spans that were dropped.
    pub rejected_spans: u64,
    /// Why, when any were.
    pub message: Option<String>,
}

/// The ingest path shared by OTLP/gRPC and OTLP/HTTP.
#[derive(Debug)]
pub struct Ingest {
    /// The queue to the writer.
    pub queue: IngestQueue,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Bodies being read and decoded at once, at most.
    pub decodes: Arc<Semaphore>,
    /// Body size limit, compressed and decompressed.
    pub max_message_bytes: usize,
    /// Longest wait for a decode slot or for queue room before "retry later".
    pub queue_wait: Duration,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
}

impl Ingest {
    /// Waits (at most `queue_wait`) for a decode slot; requests wait holding only their headers.
    pub async fn decode_permit(&self) -> Result<OwnedSemaphorePermit, Error> {
        match tokio::time::timeout(self.queue_wait, self.decodes.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(self.queue.full_error()),
        }
    }

    /// Converts, queues and waits for the commit of one decoded export.
    pub async fn export(
        &self,
        request: ExportTraceServiceRequest,
        project_override: Option<String>,
        principal: &Principal,
        decode_permit: Option<OwnedSemaphorePermit>,
    ) -> Result<ExportOutcome, Error> {
        let sender = Sender { user_id: principal.user_id, kind: principal.kind.as_str_name() };
        let spans = count_spans(&request);
        if spans > self.queue.capacity() as usize {
            let error = Error::TooManySpans { spans, limit: self.queue.capacity() };
            self.metrics.record_refused(&error, Some(spans as u64));
            return Err(error);
        }
        let batch = if spans > INLINE_CONVERT_SPANS {
            tokio::task::spawn_blocking(move || convert_export(request, project_override.as_deref(), sender))
                .await
                .map_err(|_| Error::Unavailable)?
        } else {
            convert_export(request, project_override.as_deref(), sender)
        };
        let outcome = ExportOutcome {
            accepted_spans: batch.rows.len() as u64,
            rejected_spans: batch.rejected_spans,
            message: batch.rejection_message(),
        };
        // Wait for room holding the decode slot: decoding more exports that cannot be queued
        // would only burn CPU (and memory) on work thrown away.
        let reservation = match self.queue.reserve(batch.rows.len(), self.queue_wait).await {
            Ok(reservation) => reservation,
            Err(error) => {
                self.metrics.record_refused(&error, Some(spans as u64));
                return Err(error);
            }
        };
        drop(decode_permit);
        match self.queue.submit(batch, reservation).await {
            Ok(()) => {
                self.metrics.record_accepted(outcome.accepted_spans, outcome.rejected_spans);
                Ok(outcome)
            }
            Err(error) => {
                self.metrics.record_refused(&error, Some(outcome.accepted_spans));
                Err(error)
            }
        }
    }
}

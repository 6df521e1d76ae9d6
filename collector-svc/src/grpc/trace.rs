//! OTLP/gRPC `TraceService/Export`. Authentication (viewers refused) has already run in the
//! tower layer, so this never checks capacity for an unauthenticated caller.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

use crate::auth::{AuthError, Principal};
use crate::error::Error;
use crate::ingest::{DecodeSlot, Ingest};

/// The OTLP trace receiver.
#[derive(Debug, Clone)]
pub struct OtlpTraceService {
    ingest: Arc<Ingest>,
}

impl OtlpTraceService {
    /// A receiver that hands exports to `ingest`.
    pub fn new(ingest: Arc<Ingest>) -> Self {
        Self { ingest }
    }
}

#[tonic::async_trait]
impl TraceService for OtlpTraceService {
    #[tracing::instrument(skip_all, fields(user_id, spans))]
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let Some(principal) = request.extensions().get::<Principal>().cloned() else {
            // The auth layer always sets one; refuse rather than store spans without an owner.
            return Err(Error::Auth(AuthError::Missing).into());
        };
        tracing::Span::current().record("user_id", principal.user_id);
        let permit = request.extensions().get::<DecodeSlot>().and_then(DecodeSlot::take);
        let outcome = self.ingest.export(request.into_inner(), None, &principal, permit).await?;
        tracing::Span::current().record("spans", outcome.accepted_spans);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: outcome.message.map(|error_message| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(outcome.rejected_spans).unwrap_or(i64::MAX),
                error_message,
            }),
        }))
    }
}

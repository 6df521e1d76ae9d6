//! OTLP/gRPC `TraceService/Export`. Authentication (viewers refused) has already run in the
//! tower layer, so this never checks capacity for an unauthenticated caller. Then, in order:
//! refuse at once while the queue is full, take a decode slot (held while tonic reads and
//! decodes the body, and until the export is queued), give the body a deadline, decode, export.
//!
//! Served by hand rather than by `opentelemetry-proto`'s generated server so that the request
//! codec is ours: OTLP requires INVALID_ARGUMENT for a request that cannot be decoded, where
//! tonic's codec answers INTERNAL (which an exporter cannot tell from a server fault).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{Body, BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstEncoder;

use tokio::sync::OwnedSemaphorePermit;

use super::deadline::DeadlineBody;
use crate::auth::{AuthError, Principal};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pipeline::admission::Ingest;

/// The one method of the service.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const GRPC_STATUS: &str = "grpc-status";
const OUT_OF_RANGE: &str = "11";

/// The OTLP trace receiver: a tower service for tonic's router.
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

impl NamedService for OtlpTraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tower::Service<http::Request<B>> for OtlpTraceService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async { Ok(Status::unimplemented("Unknown method").into_http()) });
        }
        let ingest = self.ingest.clone();
        Box::pin(async move {
            // Do not read and decode a body the queue could not take anyway.
            if ingest.queue.is_full() {
                let error = ingest.queue.full_error();
                ingest.metrics.record_refused(&error, None);
                return Ok(Status::from(error).into_http());
            }
            let permit = match ingest.decode_permit().await {
                Ok(permit) => permit,
                Err(error) => {
                    ingest.metrics.record_refused(&error, None);
                    return Ok(Status::from(error).into_http());
                }
            };
            // The deadline runs from here: the body is read while the slot is held.
            let request =
                request.map(|body| DeadlineBody::new(body, ingest.body_timeout, ingest.metrics.clone()));
            let codec = ExportCodec { metrics: ingest.metrics.clone() };
            let mut grpc = Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(ingest.max_message_bytes);
            let mut response =
                grpc.unary(Export { ingest: ingest.clone(), permit: Some(permit) }, request).await;
            // The handler never answers OUT_OF_RANGE, so this is tonic's message-size check;
            // OTLP exporters (and the issue) expect RESOURCE_EXHAUSTED.
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

/// The handler, called with a decoded request; owns the request's decode slot.
struct Export {
    ingest: Arc<Ingest>,
    permit: Option<OwnedSemaphorePermit>,
}

impl UnaryService<ExportTraceServiceRequest> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<ExportTraceServiceRequest>) -> Self::Future {
        let (ingest, permit) = (self.ingest.clone(), self.permit.take());
        Box::pin(async move { export(&ingest, request, permit).await })
    }
}

#[tracing::instrument(name = "export", skip_all, fields(user_id, spans))]
async fn export(
    ingest: &Ingest,
    request: Request<ExportTraceServiceRequest>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Response<ExportTraceServiceResponse>, Status> {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        // The auth layer always sets one; refuse rather than store spans without an owner.
        return Err(Error::Auth(AuthError::Missing).into());
    };
    tracing::Span::current().record("user_id", principal.user_id);
    let outcome = ingest.export(request.into_inner(), None, &principal, permit).await?;
    tracing::Span::current().record("spans", outcome.accepted_spans);
    Ok(Response::new(ExportTraceServiceResponse {
        partial_success: outcome.message.map(|error_message| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(outcome.rejected_spans).unwrap_or(i64::MAX),
            error_message,
        }),
    }))
}

/// Protobuf in and out; an undecodable request is INVALID_ARGUMENT, counted as refused.
struct ExportCodec {
    metrics: Arc<Metrics>,
}

impl Codec for ExportCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = ExportTraceServiceRequest;
    type Encoder = ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = ExportDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ExportDecoder { metrics: self.metrics.clone() }
    }
}

/// See [`ExportCodec`].
struct ExportDecoder {
    metrics: Arc<Metrics>,
}

impl Decoder for ExportDecoder {
    type Item = ExportTraceServiceRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportTraceServiceRequest::decode(src).map(Some).map_err(|e| {
            // The same words as OTLP/HTTP's 400.
            let error = Error::InvalidBody(format!("Invalid OTLP protobuf: {e}"));
            self.metrics.record_refused(&error, None);
            error.into()
        })
    }
}

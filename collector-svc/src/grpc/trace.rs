//! OTLP/gRPC `TraceService/Export`. Authentication (viewers refused) has already run in the
//! tower layer, so this never checks capacity for an unauthenticated caller.
//!
//! Served by hand rather than by `opentelemetry-proto`'s generated server so that the request
//! codec is ours: OTLP requires INVALID_ARGUMENT for a request that cannot be decoded, where
//! tonic's codec answers INTERNAL (which an exporter cannot tell from a server fault).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{Body, BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstEncoder;

use crate::auth::{AuthError, Principal};
use crate::error::Error;
use crate::ingest::{DecodeSlot, Ingest};
use crate::metrics::Metrics;

/// The one method of the service.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

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
            let codec = ExportCodec { metrics: ingest.metrics.clone() };
            let mut grpc = Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(ingest.max_message_bytes);
            Ok(grpc.unary(Export { ingest }, request).await)
        })
    }
}

/// The handler, called with a decoded request.
struct Export {
    ingest: Arc<Ingest>,
}

impl UnaryService<ExportTraceServiceRequest> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<ExportTraceServiceRequest>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move { export(&ingest, request).await })
    }
}

#[tracing::instrument(name = "export", skip_all, fields(user_id, spans))]
async fn export(
    ingest: &Ingest,
    request: Request<ExportTraceServiceRequest>,
) -> Result<Response<ExportTraceServiceResponse>, Status> {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        // The auth layer always sets one; refuse rather than store spans without an owner.
        return Err(Error::Auth(AuthError::Missing).into());
    };
    tracing::Span::current().record("user_id", principal.user_id);
    let permit = request.extensions().get::<DecodeSlot>().and_then(DecodeSlot::take);
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

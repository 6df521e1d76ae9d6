//! OTLP/gRPC through the generated tonic client: success, gzip, limits, duplicates.

use ashgate_proto::collector::Project;
use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::ashgate_collector::auth::CredentialVerifier;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use ashgate_testkit::collector::deps::tonic_prost::ProstCodec;
use tonic::Code;
use tonic::codec::CompressionEncoding;

use crate::{collector, export_request, kv, span, spans, trace_client};

#[tokio::test]
async fn export_is_stored_before_it_is_answered() {
    let collector = collector().await;
    let mut client = trace_client(&collector).await;
    let response =
        client.export(export_request(Some("chat"), spans(1, 100, 1_000))).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);
    // The answer came after the commit: the rows are there without waiting.
    assert_eq!(collector.span_count().await, 100);
}

#[tokio::test]
async fn gzip_requests_are_accepted() {
    let collector = collector().await;
    let mut client = trace_client(&collector).await.send_compressed(CompressionEncoding::Gzip);
    client.export(export_request(None, spans(2, 50, 1_000))).await.unwrap();
    assert_eq!(collector.span_count().await, 50);
}

#[tokio::test]
async fn retried_export_does_not_duplicate_spans() {
    let collector = collector().await;
    let mut client = trace_client(&collector).await;
    let request = export_request(None, spans(3, 20, 1_000));
    client.export(request.clone()).await.unwrap();
    client.export(request).await.unwrap();
    assert_eq!(collector.span_count().await, 20);
    let metrics = reqwest_text(&collector.http_url("/metrics")).await;
    assert!(metrics.contains("ashgate_collector_stored_spans_total 20\n"), "{metrics}");
    assert!(metrics.contains("ashgate_collector_duplicate_spans_total 20\n"), "{metrics}");
}

#[tokio::test]
async fn invalid_spans_come_back_as_partial_success() {
    let collector = collector().await;
    let mut client = trace_client(&collector).await;
    let mut bad = span(4, 1, 1_000);
    bad.trace_id.truncate(5);
    let mut zero_span = span(4, 2, 1_000);
    zero_span.span_id = vec![0; 8];
    let request = export_request(None, vec![span(4, 0, 1_000), bad, zero_span]);
    let partial =
        client.export(request).await.unwrap().into_inner().partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, "2 spans rejected; first: trace_id must be 16 bytes, not all zero");
    assert_eq!(collector.span_count().await, 1);
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted() {
    let collector =
        CollectorFixture::start_with(CredentialVerifier::disabled(), |c| c.max_message_bytes = 64 * 1024)
            .await;
    let mut big = spans(5, 10, 1_000);
    big[0].attributes.push(kv("blob", &"x".repeat(100 * 1024)));
    let status = trace_client(&collector).await.export(export_request(None, big.clone())).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "Request body is larger than the limit of 65536 bytes");

    // Compressed below the limit but inflating past it: still refused, without inflating it all.
    let mut client = trace_client(&collector).await.send_compressed(CompressionEncoding::Gzip);
    let status = client.export(export_request(None, big)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("size limit, of 65536 bytes, exceeded"), "{}", status.message());
    assert_eq!(collector.span_count().await, 0);
}

#[tokio::test]
async fn undecodable_message_is_refused() {
    let collector = collector().await;
    // A message whose field 1 is a varint where ExportTraceServiceRequest has a repeated message.
    let channel =
        tonic::transport::Channel::from_shared(collector.grpc_endpoint()).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let codec = ProstCodec::<Project, ExportTraceServiceResponse>::default();
    let status = grpc
        .unary(tonic::Request::new(Project { id: 5, ..Default::default() }), path, codec)
        .await
        .unwrap_err();
    // OTLP: "data that cannot be decoded" is INVALID_ARGUMENT, so exporters do not retry it
    // (tonic's own codec would answer INTERNAL). The words are OTLP/HTTP's 400's.
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("Invalid OTLP protobuf: failed to decode Protobuf message"),
        "{}",
        status.message()
    );
    assert_eq!(collector.span_count().await, 0);
    // No message at all is a gRPC protocol error, which tonic answers INTERNAL.
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let codec = ProstCodec::<Project, ExportTraceServiceResponse>::default();
    grpc.ready().await.unwrap();
    let status = grpc
        .client_streaming(tonic::Request::new(futures::stream::empty::<Project>()), path, codec)
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Internal, "Missing request message."));
    // An unknown method of the service is UNIMPLEMENTED, as from a generated server.
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Import",
    );
    let codec = ProstCodec::<Project, ExportTraceServiceResponse>::default();
    grpc.ready().await.unwrap();
    let status = grpc.unary(tonic::Request::new(Project::default()), path, codec).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

async fn reqwest_text(url: &str) -> String {
    crate::http_client().get(url).send().await.unwrap().text().await.unwrap()
}

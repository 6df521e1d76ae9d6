//! The real Rust OpenTelemetry OTLP exporter (opentelemetry-otlp) against the collector, over
//! gRPC (gzip) and HTTP (protobuf and JSON).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ashgate_proto::collector::span_query_service_client::SpanQueryServiceClient;
use ashgate_proto::collector::{ProjectSelector, QuerySpansRequest};
use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use ashgate_testkit::collector::deps::opentelemetry::{InstrumentationScope, KeyValue};
use ashgate_testkit::collector::deps::opentelemetry_http::hyper::HyperClient;
use ashgate_testkit::collector::deps::opentelemetry_otlp::{
    Compression, Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use ashgate_testkit::collector::deps::opentelemetry_sdk::Resource;
use ashgate_testkit::collector::deps::opentelemetry_sdk::trace::{
    SpanData, SpanEvents, SpanExporter as _, SpanLinks,
};

use crate::collector;

/// `n` finished spans of trace `trace`, as the SDK hands them to an exporter.
pub fn span_batch(trace: u128, n: u64) -> Vec<SpanData> {
    (1..=n)
        .map(|i| SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(i),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: if i == 1 { SpanId::INVALID } else { SpanId::from(1) },
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: format!("llm-call-{i}").into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now() + Duration::from_millis(5),
            attributes: vec![
                KeyValue::new("llm.token_count.total", 42_i64),
                KeyValue::new("openinference.span.kind", "LLM"),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Ok,
            instrumentation_scope: InstrumentationScope::builder("ashgate-tests").build(),
        })
        .collect()
}

/// A resource naming `project`.
pub fn project_resource(project: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("openinference.project.name", project.to_owned()),
            KeyValue::new("service.name", "tests"),
        ])
        .build()
}

async fn stored_in(collector: &CollectorFixture, project: &str) -> Vec<ashgate_proto::collector::Span> {
    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let request = QuerySpansRequest { project: ProjectSelector::by_name(project), ..Default::default() };
    client.query_spans(request).await.unwrap().into_inner().spans
}

#[tokio::test]
async fn otlp_grpc_exporter_with_gzip() {
    let collector = collector().await;
    let mut exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(collector.grpc_endpoint())
        .with_compression(Compression::Gzip)
        .build()
        .unwrap();
    exporter.set_resource(&project_resource("otel-grpc"));
    exporter.export(span_batch(0xabc, 100)).await.unwrap();
    let spans = stored_in(&collector, "otel-grpc").await;
    assert_eq!(spans.len(), 100);
    assert!(spans.iter().all(|s| s.trace_id == format!("{:032x}", 0xabc) && s.kind == "SPAN_KIND_CLIENT"));
    let root = spans.iter().find(|s| s.name == "llm-call-1").unwrap();
    assert_eq!(root.parent_span_id, "");
    assert_eq!(root.status_code, "OK");
    let attributes: serde_json::Value = serde_json::from_str(&root.attributes_json).unwrap();
    assert_eq!(
        attributes,
        serde_json::json!({"llm.token_count.total": 42, "openinference.span.kind": "LLM"})
    );
}

#[tokio::test]
async fn otlp_http_exporter_protobuf_and_json() {
    let collector = collector().await;
    for (protocol, project, trace) in
        [(Protocol::HttpBinary, "otel-http-proto", 1_u128), (Protocol::HttpJson, "otel-http-json", 2)]
    {
        let mut exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(collector.traces_url())
            .with_protocol(protocol)
            .with_http_client(HyperClient::with_default_connector(Duration::from_secs(10), None))
            .build()
            .unwrap();
        exporter.set_resource(&project_resource(project));
        exporter.export(span_batch(trace, 25)).await.unwrap();
        assert_eq!(stored_in(&collector, project).await.len(), 25, "{project}");
    }
}

#[tokio::test]
async fn otlp_http_exporter_gzip_with_project_header() {
    let collector = collector().await;
    let mut exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(collector.traces_url())
        .with_protocol(Protocol::HttpBinary)
        .with_compression(Compression::Gzip)
        .with_headers(HashMap::from([("x-project-name".to_owned(), "header-project".to_owned())]))
        .with_http_client(HyperClient::with_default_connector(Duration::from_secs(10), None))
        .build()
        .unwrap();
    exporter.set_resource(&project_resource("ignored"));
    exporter.export(span_batch(3, 10)).await.unwrap();
    assert_eq!(stored_in(&collector, "header-project").await.len(), 10);
}

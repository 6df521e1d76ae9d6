//! collector-svc integration tests: real servers on loopback ports, real OTLP exporters
//! (opentelemetry-otlp over gRPC and HTTP), raw HTTP for the error cases, SQLite by default and
//! PostgreSQL when `ASHGATE_TEST_DATABASE_URL` is set (a fresh database per test).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod auth;
mod backpressure;
mod exporters;
mod grpc;
mod http;
mod kill;
mod operations;
mod query;

use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::resource::v1::Resource;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use ashgate_testkit::collector::deps::prost::Message as _;
use ashgate_testkit::collector::deps::reqwest;
use tonic::transport::Channel;

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// Span `index` of trace `trace`, started at `start` ns.
pub fn span(trace: u64, index: u64, start: u64) -> Span {
    let mut trace_id = vec![0u8; 16];
    trace_id[..8].copy_from_slice(&trace.to_be_bytes());
    trace_id[15] = 1;
    let mut span_id = (index + 1).to_be_bytes().to_vec();
    span_id[0] = 0xaa;
    Span {
        trace_id,
        span_id,
        name: format!("span-{index}"),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000,
        attributes: vec![kv("llm.model_name", "gpt-test"), kv("input.value", "hello")],
        ..Default::default()
    }
}

/// Lower-case hex of the trace id `span(trace, ..)` uses.
pub fn trace_hex(trace: u64) -> String {
    format!("{trace:016x}{:016x}", 1)
}

/// `n` spans of trace `trace`, starting 1 µs apart from `start`.
pub fn spans(trace: u64, n: u64, start: u64) -> Vec<Span> {
    (0..n).map(|i| span(trace, i, start + i * 1_000)).collect()
}

/// One resource (optionally naming a project) holding `spans`.
pub fn export_request(project: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    let attributes = project
        .map(|p| vec![kv("openinference.project.name", p), kv("service.name", "svc")])
        .unwrap_or_default();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Protobuf bytes of `request`.
pub fn encode(request: &ExportTraceServiceRequest) -> Vec<u8> {
    request.encode_to_vec()
}

/// A gRPC OTLP client for the fixture.
pub async fn trace_client(collector: &CollectorFixture) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(collector.grpc_endpoint()).await.expect("connect gRPC")
}

/// A plain HTTP client.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("reqwest client")
}

/// The value of a `/metrics` line named `name` (labels included).
pub async fn metric(collector: &CollectorFixture, name: &str) -> u64 {
    let text = http_client().get(collector.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Spans queued and not yet committed.
pub async fn queue_depth(collector: &CollectorFixture) -> u64 {
    metric(collector, "ashgate_collector_queue_depth_spans").await
}

/// A fixture with default settings.
pub async fn collector() -> CollectorFixture {
    CollectorFixture::start().await
}

//! OTLP/HTTP with raw requests: formats, encodings, projects and every error answer.

use std::io::Write as _;

use ashgate_proto::collector::span_query_service_client::SpanQueryServiceClient;
use ashgate_proto::collector::{ProjectSelector, QuerySpansRequest};
use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::ashgate_collector::auth::CredentialVerifier;
use ashgate_testkit::collector::deps::flate2::Compression;
use ashgate_testkit::collector::deps::flate2::write::{GzEncoder, ZlibEncoder};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use ashgate_testkit::collector::deps::prost::Message as _;
use ashgate_testkit::collector::deps::reqwest::{Response, StatusCode};
use ashgate_testkit::collector::deps::serde_json::{self, json};

use crate::{collector, encode, export_request, http_client, kv, span, spans, trace_hex};

async fn post(collector: &CollectorFixture, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let mut request = http_client().post(collector.traces_url()).body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

async fn expect_error(response: Response, status: StatusCode, message: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(response.text().await.unwrap(), message);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn protobuf_export_answers_an_encoded_response() {
    let collector = collector().await;
    let response = post(&collector, &[PROTOBUF], encode(&export_request(None, spans(1, 100, 1_000)))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let decoded = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(decoded.partial_success, None);
    assert_eq!(collector.span_count().await, 100);
}

#[tokio::test]
async fn json_export_in_the_otlp_mapping() {
    let collector = collector().await;
    // Hex ids, camelCase, int64 as strings: the OTLP/JSON spec example shape.
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "openinference.project.name", "value": {"stringValue": "json-project"}}]},
        "scopeSpans": [{"scope": {"name": "lib"}, "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173", "name": "server span", "kind": 2,
            "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000",
            "attributes": [{"key": "n", "value": {"intValue": "42"}}],
            "status": {"code": 2, "message": "failed"}
        }]}]
    }]});
    let response = post(&collector, &[JSON], serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), "{}");

    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let request =
        QuerySpansRequest { project: ProjectSelector::by_name("json-project"), ..Default::default() };
    let spans = client.query_spans(request).await.unwrap().into_inner().spans;
    assert_eq!(spans.len(), 1);
    let stored = &spans[0];
    assert_eq!(stored.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(stored.span_id, "eee19b7ec3c1b174");
    assert_eq!(stored.parent_span_id, "eee19b7ec3c1b173");
    assert_eq!(stored.kind, "SPAN_KIND_SERVER");
    assert_eq!((stored.status_code.as_str(), stored.status_message.as_str()), ("ERROR", "failed"));
    assert_eq!(stored.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(stored.attributes_json, r#"{"n":42}"#);
    assert_eq!(stored.ingested_by_kind, "CREDENTIAL_KIND_ANONYMOUS");
}

#[tokio::test]
async fn json_partial_success() {
    let collector = collector().await;
    let mut bad = span(2, 1, 1_000);
    bad.span_id = vec![1, 2, 3];
    let body = serde_json::to_vec(&export_request(None, vec![span(2, 0, 1_000), bad])).unwrap();
    let response = post(&collector, &[JSON], body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"partialSuccess":{"errorMessage":"1 spans rejected; first: span_id must be 8 bytes, not all zero","rejectedSpans":"1"}}"#
    );
    assert_eq!(collector.span_count().await, 1);
}

#[tokio::test]
async fn gzip_and_deflate_bodies() {
    let collector = collector().await;
    let body = gzip(&encode(&export_request(None, spans(3, 10, 1_000))));
    let response = post(&collector, &[PROTOBUF, ("content-encoding", "gzip")], body).await;
    assert_eq!(response.status(), 200);

    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&serde_json::to_vec(&export_request(None, spans(4, 10, 1_000))).unwrap()).unwrap();
    let response =
        post(&collector, &[JSON, ("content-encoding", "deflate")], encoder.finish().unwrap()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(collector.span_count().await, 20);
}

#[tokio::test]
async fn project_header_overrides_resource_attribute() {
    let collector = collector().await;
    let body = encode(&export_request(Some("from-resource"), spans(5, 3, 1_000)));
    assert_eq!(post(&collector, &[PROTOBUF], body.clone()).await.status(), 200);
    let body = encode(&export_request(Some("from-resource"), spans(6, 2, 1_000)));
    assert_eq!(post(&collector, &[PROTOBUF, ("x-project-name", "from-header")], body).await.status(), 200);
    let body = encode(&export_request(None, spans(7, 1, 1_000)));
    assert_eq!(post(&collector, &[PROTOBUF], body).await.status(), 200);

    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    for (project, count, trace) in [("from-resource", 3, 5), ("from-header", 2, 6), ("default", 1, 7)] {
        let request = QuerySpansRequest { project: ProjectSelector::by_name(project), ..Default::default() };
        let spans = client.query_spans(request).await.unwrap().into_inner().spans;
        assert_eq!(spans.len(), count, "{project}");
        assert!(spans.iter().all(|s| s.trace_id == trace_hex(trace) && s.project == project));
    }
    let stored = &client
        .query_spans(QuerySpansRequest {
            project: ProjectSelector::by_name("from-resource"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .spans[0];
    let resource: serde_json::Value = serde_json::from_str(&stored.resource_json).unwrap();
    assert_eq!(resource, json!({"openinference.project.name": "from-resource", "service.name": "svc"}));
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let collector = collector().await;
    let body = encode(&export_request(None, spans(8, 1, 1_000)));
    let response = post(&collector, &[("content-type", "text/plain")], body.clone()).await;
    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported content type: text/plain; use application/x-protobuf or application/json",
    )
    .await;
    let response = post(&collector, &[], body).await;
    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported content type: (none); use application/x-protobuf or application/json",
    )
    .await;
}

#[tokio::test]
async fn unknown_content_encoding_is_415() {
    let collector = collector().await;
    let body = encode(&export_request(None, spans(9, 1, 1_000)));
    let response = post(&collector, &[PROTOBUF, ("content-encoding", "br")], body).await;
    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported content encoding: br; use gzip or deflate",
    )
    .await;
}

#[tokio::test]
async fn undecodable_bodies_are_400_with_a_message() {
    let collector = collector().await;
    let response = post(&collector, &[PROTOBUF], vec![0x0a, 0xff, 0xff, 0xff]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("Invalid OTLP protobuf: failed to decode Protobuf message"), "{text}");

    let response = post(&collector, &[JSON], b"{\"resourceSpans\": 5}".to_vec()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("Invalid OTLP JSON: invalid type: integer `5`, expected a sequence"), "{text}");

    let response = post(&collector, &[PROTOBUF, ("content-encoding", "gzip")], b"not gzip".to_vec()).await;
    expect_error(response, StatusCode::BAD_REQUEST, "Invalid gzip body").await;
    assert_eq!(collector.span_count().await, 0);
}

#[tokio::test]
async fn oversized_body_and_gzip_bomb_are_413() {
    let collector =
        CollectorFixture::start_with(CredentialVerifier::disabled(), |c| c.max_message_bytes = 64 * 1024)
            .await;
    let mut big = spans(10, 1, 1_000);
    big[0].attributes.push(kv("blob", &"x".repeat(100 * 1024)));
    let response = post(&collector, &[PROTOBUF], encode(&export_request(None, big))).await;
    expect_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is larger than the limit of 65536 bytes",
    )
    .await;

    // Under 64 KiB of gzip that inflates to 48 MiB of zeros (deflate tops out near 1000:1).
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..48 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
    let response = post(&collector, &[PROTOBUF, ("content-encoding", "gzip")], bomb).await;
    expect_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is larger than the limit of 65536 bytes",
    )
    .await;
    assert_eq!(collector.span_count().await, 0);
}

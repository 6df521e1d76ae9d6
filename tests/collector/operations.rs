//! Health, readiness, metrics, and what a failing span store answers.

use ashgate_testkit::collector::deps::tonic_health::pb::HealthCheckRequest;
use ashgate_testkit::collector::deps::tonic_health::pb::health_check_response::ServingStatus;
use ashgate_testkit::collector::deps::tonic_health::pb::health_client::HealthClient;

use std::time::Duration;

use ashgate_testkit::collector::deps::sqlx;
use ashgate_testkit::collector::deps::tonic_types::StatusExt as _;
use tonic::Code;

use crate::{collector, encode, export_request, http_client, spans, trace_client};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let collector = collector().await;
    let http = http_client();
    let healthz = http.get(collector.http_url("/healthz")).send().await.unwrap();
    assert_eq!((healthz.status().as_u16(), healthz.text().await.unwrap()), (200, "ok".to_owned()));
    let readyz = http.get(collector.http_url("/readyz")).send().await.unwrap();
    assert_eq!((readyz.status().as_u16(), readyz.text().await.unwrap()), (200, "ready".to_owned()));

    let channel =
        tonic::transport::Channel::from_shared(collector.grpc_endpoint()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    for service in
        ["", "opentelemetry.proto.collector.trace.v1.TraceService", "ashgate.collector.v1.SpanQueryService"]
    {
        let request = HealthCheckRequest { service: service.into() };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    trace_client(&collector).await.export(export_request(None, spans(1, 7, 1_000))).await.unwrap();
    let bad = http
        .post(collector.traces_url())
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 415);
    let response = http.get(collector.http_url("/metrics")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4");
    let metrics = response.text().await.unwrap();
    for line in [
        "ashgate_collector_accepted_exports_total 1",
        "ashgate_collector_accepted_spans_total 7",
        "ashgate_collector_stored_spans_total 7",
        "ashgate_collector_queue_depth_spans 0",
        "ashgate_collector_refused_exports_total{reason=\"unsupported_media_type\"} 1",
        "ashgate_collector_auth_cache_hits_total 0",
        "# TYPE ashgate_collector_queue_depth_spans gauge",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn store_failure_is_unavailable_and_retryable() {
    let collector = collector().await;
    trace_client(&collector).await.export(export_request(None, spans(1, 5, 1_000))).await.unwrap();
    // Break the real database under the collector.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(collector.database.url.expose()).await.unwrap();
    sqlx::query("DROP TABLE spans").execute(&pool).await.unwrap();
    pool.close().await;

    let status =
        trace_client(&collector).await.export(export_request(None, spans(2, 5, 1_000))).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unavailable, "Span store unavailable"));
    assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(1)));
    let response = http_client()
        .post(collector.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(encode(&export_request(None, spans(3, 5, 1_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.text().await.unwrap(), "Span store unavailable");
}

/// OTLP/gRPC connections past `ASHGATE_OTLP_MAX_CONNECTIONS` are closed as soon as they are
/// accepted; when the held ones go, exports are served again.
#[tokio::test]
async fn grpc_connections_past_the_cap_are_closed() {
    use ashgate_testkit::collector::CollectorFixture;
    use tokio::io::AsyncReadExt as _;
    let collector = CollectorFixture::start_with(
        ashgate_testkit::collector::deps::ashgate_collector::auth::CredentialVerifier::disabled(),
        |config| config.max_connections = 3,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(collector.grpc_addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(collector.grpc_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the fourth connection is closed at once: {closed:?}");
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut otlp = trace_client(&collector).await;
    otlp.export(export_request(Some("capped"), spans(1, 2, 1_000))).await.unwrap();
    assert_eq!(collector.span_count().await, 2);
}

//! A full queue says "retry later" at once, on both transports; nothing is buffered past it, and
//! what was accepted is committed when the writer catches up. The writer is slowed with the
//! collector's test hold (`CollectorConfig::writer_hold`), not replaced.

use std::time::Duration;

use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::ashgate_collector::WriterHold;
use ashgate_testkit::collector::deps::ashgate_collector::auth::CredentialVerifier;
use ashgate_testkit::collector::deps::ashgate_collector::store::Store;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use ashgate_testkit::collector::deps::reqwest::StatusCode;
use ashgate_testkit::collector::deps::tonic_prost::ProstCodec;
use ashgate_testkit::collector::deps::tonic_types::StatusExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

use crate::{encode, export_request, http_client, metric, queue_depth, spans, trace_client};

#[tokio::test]
async fn full_queue_answers_retry_later_and_commits_what_it_accepted() {
    let hold = WriterHold::new();
    let collector = CollectorFixture::start_with(CredentialVerifier::disabled(), |c| {
        c.queue_capacity_spans = 200;
        c.writer_hold = Some(hold.clone());
    })
    .await;

    // Two exports fill the queue; they wait for their commit.
    let mut pending = Vec::new();
    for trace in 1..=2 {
        let mut client = trace_client(&collector).await;
        pending.push(tokio::spawn(async move {
            client.export(export_request(None, spans(trace, 100, 1_000))).await
        }));
    }
    for _ in 0..100 {
        if queue_depth(&collector).await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(queue_depth(&collector).await, 200);

    // gRPC: RESOURCE_EXHAUSTED with RetryInfo (what OTLP exporters need to retry) and retry-after.
    let status =
        trace_client(&collector).await.export(export_request(None, spans(3, 10, 1_000))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "Server is at capacity, retry later");
    assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(1)));
    assert_eq!(status.metadata().get("retry-after").unwrap(), "1");

    // HTTP: 429 with Retry-After.
    let response = http_client()
        .post(collector.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(encode(&export_request(None, spans(4, 10, 1_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.text().await.unwrap(), "Server is at capacity, retry later");

    // Nothing is committed while the writer is held; everything accepted is, once released.
    assert_eq!(collector.span_count().await, 0);
    hold.release();
    for export in pending {
        export.await.unwrap().unwrap();
    }
    assert_eq!(collector.span_count().await, 200);
    assert_eq!(queue_depth(&collector).await, 0);
    let metrics =
        http_client().get(collector.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("ashgate_collector_refused_exports_total{reason=\"queue_full\"} 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn export_larger_than_the_whole_queue_is_not_retryable() {
    let collector =
        CollectorFixture::start_with(CredentialVerifier::disabled(), |c| c.queue_capacity_spans = 50).await;
    let status =
        trace_client(&collector).await.export(export_request(None, spans(1, 60, 1_000))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "Export holds 60 spans; at most 50 are accepted per request");
    assert!(status.get_details_retry_info().is_none());
    let response = http_client()
        .post(collector.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(encode(&export_request(None, spans(2, 60, 1_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.text().await.unwrap(), "Export holds 60 spans; at most 50 are accepted per request");
}

#[tokio::test]
async fn graceful_shutdown_commits_in_flight_exports() {
    let hold = WriterHold::new();
    let mut collector =
        CollectorFixture::start_with(CredentialVerifier::disabled(), |c| c.writer_hold = Some(hold.clone()))
            .await;
    let mut client = trace_client(&collector).await;
    let export = tokio::spawn(async move { client.export(export_request(None, spans(1, 100, 1_000))).await });
    while queue_depth(&collector).await < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let stopping = collector.stop();
        tokio::pin!(stopping);
        let early = tokio::time::timeout(Duration::from_millis(300), &mut stopping).await;
        assert!(early.is_err(), "shutdown must wait for the in-flight export");
        hold.release();
        stopping.await.unwrap();
    }
    export.await.unwrap().expect("in-flight export answered OK");
    let reopened = Store::connect(&collector.database.url).await.unwrap();
    assert_eq!(reopened.count_spans().await.unwrap(), 100);
}

#[tokio::test]
async fn export_that_does_not_fit_waits_a_bounded_time() {
    let hold = WriterHold::new();
    let collector = CollectorFixture::start_with(CredentialVerifier::disabled(), |c| {
        c.queue_capacity_spans = 200;
        // Long enough that the room made below appears within it even on a loaded machine.
        c.queue_wait = Duration::from_millis(1_500);
        c.writer_hold = Some(hold.clone());
    })
    .await;
    let mut client = trace_client(&collector).await;
    let first = tokio::spawn(async move { client.export(export_request(None, spans(1, 150, 1_000))).await });
    let filling = std::time::Instant::now();
    while queue_depth(&collector).await < 150 {
        assert!(filling.elapsed() < Duration::from_secs(10), "queue never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 100 spans do not fit in the 50 left: refused after waiting the configured 1.5 s.
    let started = std::time::Instant::now();
    let status =
        trace_client(&collector).await.export(export_request(None, spans(2, 100, 1_000))).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::ResourceExhausted, "Server is at capacity, retry later")
    );
    assert!(started.elapsed() >= Duration::from_millis(1_500), "answered after {:?}", started.elapsed());
    // ...and not much later: the wait is bounded (the writer is held, so nothing else ends it).
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());

    // Room that appears within the wait is used.
    let mut client = trace_client(&collector).await;
    let second = tokio::spawn(async move { client.export(export_request(None, spans(3, 100, 1_000))).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    hold.release();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(collector.span_count().await, 250);
}

/// A gRPC export whose headers are sent and whose message never is; resolves to the answer.
async fn stalled_export(
    collector: &CollectorFixture,
) -> impl Future<Output = Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status>> + Send + 'static
{
    let channel =
        tonic::transport::Channel::from_shared(collector.grpc_endpoint()).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    async move {
        grpc.client_streaming(
            tonic::Request::new(futures::stream::pending::<ExportTraceServiceRequest>()),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            ),
            ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceResponse>::default(),
        )
        .await
    }
}

/// An export whose body never finishes holds its decode slot only until
/// `ASHGATE_OTLP_BODY_TIMEOUT_SECONDS`: gRPC answers DEADLINE_EXCEEDED, HTTP 408, and an export
/// waiting behind it for the only slot goes through. (Before: a gRPC body had no deadline, so a
/// trickling client kept the slot, and with it every other export, for as long as it liked.)
#[tokio::test]
async fn unfinished_bodies_are_cut_off_and_free_their_decode_slot() {
    let collector = CollectorFixture::start_with(CredentialVerifier::disabled(), |c| {
        c.body_timeout = Duration::from_secs(1);
        c.max_concurrent_decodes = 1;
        c.queue_wait = Duration::from_secs(20);
    })
    .await;

    // gRPC: the request's headers arrive, its message never does.
    let stalled = stalled_export(&collector).await;
    let behind = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trace_client(&collector).await.export(export_request(None, spans(1, 10, 1_000))).await
    };
    let (stalled, behind) =
        tokio::time::timeout(Duration::from_secs(15), async { tokio::join!(stalled, behind) })
            .await
            .expect("an unfinished gRPC body was never cut off");
    let status = stalled.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::DeadlineExceeded, "Request body was not received within 1 s")
    );
    assert_eq!(behind.unwrap().into_inner().partial_success, None);

    // HTTP: 40 of 100 announced bytes, then nothing.
    let mut stream = tokio::net::TcpStream::connect(collector.http_addr).await.unwrap();
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&[0u8; 40]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&answer).ends_with(" s") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "an unfinished HTTP body was never cut off: {answer:?}");
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.ends_with("\r\n\r\nRequest body was not received within 1 s"), "{answer}");

    assert_eq!(metric(&collector, "ashgate_collector_refused_exports_total{reason=\"invalid\"}").await, 2);
    assert_eq!(collector.span_count().await, 10);
}

/// No decode slot within `ASHGATE_OTLP_QUEUE_WAIT_MS`: "retry later" on both transports, counted
/// as a full queue. (Before: the gRPC refusal was answered but not counted.)
#[tokio::test]
async fn no_decode_slot_in_time_is_retry_later_and_counted() {
    let collector = CollectorFixture::start_with(CredentialVerifier::disabled(), |c| {
        c.max_concurrent_decodes = 1;
        c.queue_wait = Duration::from_millis(300);
        c.body_timeout = Duration::from_secs(60);
    })
    .await;
    // A gRPC export whose body never comes holds the only slot.
    let stalled = tokio::spawn(stalled_export(&collector).await);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let status =
        trace_client(&collector).await.export(export_request(None, spans(1, 10, 1_000))).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::ResourceExhausted, "Server is at capacity, retry later")
    );
    let response = http_client()
        .post(collector.traces_url())
        .header("content-type", "application/x-protobuf")
        .body(encode(&export_request(None, spans(2, 10, 1_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.text().await.unwrap(), "Server is at capacity, retry later");
    assert_eq!(metric(&collector, "ashgate_collector_refused_exports_total{reason=\"queue_full\"}").await, 2);

    stalled.abort();
    assert_eq!(collector.span_count().await, 0);
}

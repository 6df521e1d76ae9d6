//! Authentication with a real identity-svc: API keys, access tokens, viewers, revocation,
//! expiry, and authentication before anything else (capacity, content type, decoding).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ashgate_proto::collector::span_query_service_client::SpanQueryServiceClient;
use ashgate_proto::collector::{ListProjectsRequest, ProjectSelector, QuerySpansRequest};
use ashgate_proto::identity::{CreateApiKeyRequest, DeleteApiKeyRequest, Role};
use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::ashgate_collector::WriterHold;
use ashgate_testkit::collector::deps::opentelemetry_http::hyper::HyperClient;
use ashgate_testkit::collector::deps::opentelemetry_otlp::{
    Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use ashgate_testkit::collector::deps::opentelemetry_sdk::trace::SpanExporter as _;
use ashgate_testkit::collector::deps::reqwest::StatusCode;
use ashgate_testkit::identity::{ADMIN_SECRET, INTERNAL_TOKEN, IdentityFixture, bearer};
use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::exporters::{project_resource, span_batch};
use crate::{encode, export_request, http_client, metric, queue_depth, spans, trace_client};

async fn collector_for(identity: &IdentityFixture) -> CollectorFixture {
    CollectorFixture::start_authenticated(&identity.url(), INTERNAL_TOKEN, |_| {}).await
}

/// Exports one small request over gRPC with `authorization` metadata `value` (if any).
async fn grpc_export(
    collector: &CollectorFixture,
    authorization: Option<&str>,
    trace: u64,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(export_request(Some("auth"), spans(trace, 3, 1_000)));
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value.parse().unwrap());
    }
    trace_client(collector).await.export(request).await.map(|_| ())
}

async fn http_export(
    collector: &CollectorFixture,
    authorization: Option<&str>,
    content_type: &str,
    trace: u64,
) -> ashgate_testkit::collector::deps::reqwest::Response {
    let mut request = http_client()
        .post(collector.traces_url())
        .header("content-type", content_type)
        .body(encode(&export_request(Some("auth"), spans(trace, 3, 1_000))));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.unwrap()
}

async fn assert_401(response: ashgate_testkit::collector::deps::reqwest::Response, message: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.text().await.unwrap(), message);
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn keys_tokens_and_viewers() {
    let identity = IdentityFixture::start().await;
    let collector = collector_for(&identity).await;
    let key = identity.system_key("ingest").await;
    let (member_id, member) = identity.user_with_role("member", Role::Member).await;
    let (_, viewer) = identity.user_with_role("viewer", Role::Viewer).await;

    // No credential, a bad one, a non-bearer scheme: UNAUTHENTICATED / 401 "Invalid token".
    for authorization in [None, Some("Bearer not-a-key"), Some(format!("Basic {key}").as_str())] {
        let status = grpc_export(&collector, authorization, 1).await.unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unauthenticated, "Invalid token"),
            "{authorization:?}"
        );
        assert_401(
            http_export(&collector, authorization, "application/x-protobuf", 1).await,
            "Invalid token",
        )
        .await;
    }

    // A system key (any case of the scheme), a member's access token.
    grpc_export(&collector, Some(&format!("Bearer {key}")), 2).await.unwrap();
    let response = http_export(&collector, Some(&format!("BEARER {key}")), "application/x-protobuf", 3).await;
    assert_eq!(response.status(), 200);
    grpc_export(&collector, Some(&format!("bearer {member}")), 4).await.unwrap();

    // Viewers may not write, on either transport.
    let status = grpc_export(&collector, Some(&format!("Bearer {viewer}")), 5).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, "Viewers cannot perform this action.")
    );
    let response =
        http_export(&collector, Some(&format!("Bearer {viewer}")), "application/x-protobuf", 5).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.text().await.unwrap(), "Viewers cannot perform this action.");

    // ... but may read; reads need a credential too. Each span names who sent it.
    let mut query = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let status = query.list_projects(ListProjectsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let request = bearer(
        QuerySpansRequest { project: ProjectSelector::by_name("auth"), limit: 1000, ..Default::default() },
        &viewer,
    );
    let stored = query.query_spans(request).await.unwrap().into_inner().spans;
    assert_eq!(stored.len(), 9);
    let senders: HashMap<_, _> = stored
        .iter()
        .map(|s| (s.trace_id.clone(), (s.ingested_by_user_id, s.ingested_by_kind.clone())))
        .collect();
    assert_eq!(senders[&crate::trace_hex(2)].1, "CREDENTIAL_KIND_SYSTEM_API_KEY");
    assert_eq!(senders[&crate::trace_hex(4)], (member_id, "CREDENTIAL_KIND_ACCESS_TOKEN".to_owned()));

    let metrics =
        http_client().get(collector.http_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("ashgate_collector_refused_exports_total{reason=\"unauthenticated\"} 3\n"),
        "{metrics}"
    );
    assert!(metrics.contains("ashgate_collector_auth_cache_hits_total "), "{metrics}");
    // The key and the viewer's token were each presented more than once.
    assert!(metric(&collector, "ashgate_collector_auth_cache_hits_total").await > 0, "{metrics}");
}

#[tokio::test]
async fn authentication_comes_before_capacity_and_content_checks() {
    let identity = IdentityFixture::start().await;
    let hold = WriterHold::new();
    let collector = CollectorFixture::start_authenticated(&identity.url(), INTERNAL_TOKEN, |c| {
        c.queue_capacity_spans = 3;
        c.writer_hold = Some(hold.clone());
    })
    .await;
    let key = identity.system_key("ingest").await;
    let authorization = format!("Bearer {key}");
    let filler = {
        let collector_endpoint = collector.grpc_endpoint();
        let authorization = authorization.clone();
        tokio::spawn(async move {
            let mut client = ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(collector_endpoint).await.unwrap();
            let mut request = tonic::Request::new(export_request(None, spans(1, 3, 1_000)));
            request.metadata_mut().insert("authorization", authorization.parse().unwrap());
            client.export(request).await
        })
    };
    // Wait until the filler holds the whole queue.
    let started = Instant::now();
    loop {
        if queue_depth(&collector).await == 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "queue never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = grpc_export(&collector, Some(&authorization), 2).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // Full queue: without a valid key the answer is still "who are you?", never "retry later".
    let status = grpc_export(&collector, None, 3).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_401(http_export(&collector, None, "application/x-protobuf", 3).await, "Invalid token").await;
    assert_401(http_export(&collector, Some("Bearer wrong"), "text/plain", 3).await, "Invalid token").await;
    let response = http_export(&collector, Some(&authorization), "application/x-protobuf", 3).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // With a valid key the content type is checked next.
    let response = http_export(&collector, Some(&authorization), "text/plain", 3).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    hold.release();
    filler.await.unwrap().unwrap();
}

#[tokio::test]
async fn deleted_key_is_refused_within_a_second() {
    let identity = IdentityFixture::start().await;
    let collector = collector_for(&identity).await;
    let created = identity
        .keys()
        .create_system_api_key(bearer(
            CreateApiKeyRequest { name: "doomed".into(), ..Default::default() },
            ADMIN_SECRET,
        ))
        .await
        .unwrap()
        .into_inner();
    let authorization = format!("Bearer {}", created.key);
    // Verified and cached.
    grpc_export(&collector, Some(&authorization), 1).await.unwrap();
    grpc_export(&collector, Some(&authorization), 2).await.unwrap();

    let id = created.api_key.unwrap().id;
    identity.keys().delete_system_api_key(bearer(DeleteApiKeyRequest { id }, ADMIN_SECRET)).await.unwrap();
    let deleted = Instant::now();
    loop {
        match grpc_export(&collector, Some(&authorization), 3).await {
            Err(status) => {
                assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "Invalid token"));
                break;
            }
            Ok(()) => {
                assert!(deleted.elapsed() < Duration::from_secs(1), "deleted key still accepted after 1 s")
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("deleted key refused after {:?}", deleted.elapsed());
    assert!(deleted.elapsed() < Duration::from_secs(1));
    assert_401(
        http_export(&collector, Some(&authorization), "application/x-protobuf", 4).await,
        "Invalid token",
    )
    .await;
}

#[tokio::test]
async fn expired_key_is_refused() {
    let identity = IdentityFixture::start().await;
    let collector = collector_for(&identity).await;
    let expires_at_ms = now_ms() + 1_500;
    let request = CreateApiKeyRequest { name: "short".into(), expires_at_ms, ..Default::default() };
    let key =
        identity.keys().create_system_api_key(bearer(request, ADMIN_SECRET)).await.unwrap().into_inner().key;
    let authorization = format!("Bearer {key}");
    grpc_export(&collector, Some(&authorization), 1).await.unwrap();
    while now_ms() <= expires_at_ms + 50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = grpc_export(&collector, Some(&authorization), 2).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "Expired token"));
    assert_401(
        http_export(&collector, Some(&authorization), "application/x-protobuf", 3).await,
        "Expired token",
    )
    .await;
}

#[tokio::test]
async fn otlp_exporters_send_the_key() {
    let identity = IdentityFixture::start().await;
    let collector = collector_for(&identity).await;
    let key = identity.system_key("otel").await;

    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", format!("Bearer {key}").parse().unwrap());
    let mut grpc = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(collector.grpc_endpoint())
        .with_metadata(metadata)
        .build()
        .unwrap();
    grpc.set_resource(&project_resource("otel-auth"));
    grpc.export(span_batch(1, 20)).await.unwrap();

    let mut http = SpanExporter::builder()
        .with_http()
        .with_endpoint(collector.traces_url())
        .with_protocol(Protocol::HttpBinary)
        .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {key}"))]))
        .with_http_client(HyperClient::with_default_connector(Duration::from_secs(10), None))
        .build()
        .unwrap();
    http.set_resource(&project_resource("otel-auth"));
    http.export(span_batch(2, 20)).await.unwrap();

    // Without the key the exporter reports the refusal.
    let mut anonymous =
        SpanExporter::builder().with_tonic().with_endpoint(collector.grpc_endpoint()).build().unwrap();
    anonymous.set_resource(&project_resource("otel-auth"));
    let error = anonymous.export(span_batch(3, 20)).await.unwrap_err();
    assert!(error.to_string().contains("Unauthenticated"), "{error}");
    assert_eq!(collector.span_count().await, 40);
}

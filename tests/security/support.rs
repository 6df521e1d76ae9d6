//! Helpers: raw HTTP over TCP, sign-in through the gateway, OTLP exports to the collector.

use std::net::SocketAddr;
use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::resource::v1::Resource;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use ashgate_testkit::collector::deps::prost::Message as _;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Sends `request` as raw bytes and reads until the server closes or `wait` passes; returns
/// what came back (possibly nothing).
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may close before reading everything (a refused oversized request).
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP/1.1 answer, 0 when there is none.
pub fn status_of(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The body of a raw HTTP/1.1 answer (after the blank line).
pub fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Waits until the server closes `stream` (read returns 0 or fails); `None` if it is still
/// open after `wait`.
pub async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<()> {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Status and body text of a response.
pub async fn status_text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// `GET /v1/user` with `Authorization: Bearer <credential>`.
pub async fn whoami(fixture: &GatewayFixture, credential: &str) -> (u16, String) {
    let response = GatewayFixture::client()
        .get(fixture.url("/v1/user"))
        .header("authorization", format!("Bearer {credential}"))
        .send()
        .await
        .unwrap();
    status_text(response).await
}

/// `GET /v1/user` with the access cookie.
pub async fn whoami_cookie(fixture: &GatewayFixture, token: &str) -> (u16, String) {
    let response = GatewayFixture::client()
        .get(fixture.url("/v1/user"))
        .header("cookie", format!("phoenix-access-token={token}"))
        .send()
        .await
        .unwrap();
    status_text(response).await
}

/// Signs in through `POST /auth/login`; (access, refresh) from the cookies.
pub async fn gateway_login(fixture: &GatewayFixture, email: &str, password: &str) -> (String, String) {
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "login {email}");
    let cookie = |name: &str| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix(&format!("{name}="))
                    .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    (cookie("phoenix-access-token"), cookie("phoenix-refresh-token"))
}

/// A member `name` (password `user-password-1`) with a user API key; (user id, access token, key).
pub async fn member_with_key(fixture: &GatewayFixture, name: &str) -> (i64, String, String) {
    let (id, access) = fixture.identity.user_with_role(name, pb::Role::Member).await;
    let request = pb::CreateApiKeyRequest { name: format!("{name}-key"), ..Default::default() };
    let key = fixture
        .identity
        .keys()
        .create_user_api_key(ashgate_testkit::identity::bearer(request, &access))
        .await
        .unwrap()
        .into_inner()
        .key;
    (id, access, key)
}

/// One export of `spans` spans of trace `trace` (distinct ids per trace).
pub fn export_request(trace: u64, spans: u64) -> ExportTraceServiceRequest {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&trace.wrapping_add(1).to_be_bytes());
    trace_id[8..].copy_from_slice(&0x5ec0_5ec0_u64.to_be_bytes());
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: format!("span-{i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            ..Default::default()
        })
        .collect();
    let project = KeyValue {
        key: "openinference.project.name".into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue("security".into())) }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![project], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// The protobuf body of [`export_request`].
pub fn export_body(trace: u64, spans: u64) -> Vec<u8> {
    export_request(trace, spans).encode_to_vec()
}

/// An OTLP/gRPC export with `authorization: Bearer <credential>`; the status code.
pub async fn grpc_export(grpc: SocketAddr, credential: &str, trace: u64) -> tonic::Code {
    let mut client = TraceServiceClient::connect(format!("http://{grpc}")).await.unwrap();
    let mut request = tonic::Request::new(export_request(trace, 2));
    if let Ok(value) = format!("Bearer {credential}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    match client.export(request).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

/// An OTLP/HTTP protobuf export with `Authorization: Bearer <credential>`.
pub async fn http_export(url: &str, credential: &str, trace: u64) -> (u16, String) {
    let response = GatewayFixture::client()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {credential}"))
        .body(export_body(trace, 2))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Polls `check` every 50 ms until it holds or `within` passes; whether it held.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

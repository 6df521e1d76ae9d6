//! identity-svc's `/metrics`: every call counted under its routed method with the status it
//! really ended with (including a stream the client walked away from), with latency histograms.

use std::time::Duration;

use ashgate_identity::IdentityServer;
use ashgate_identity::health_and_metrics::OpsServer;
use ashgate_proto::identity as pb;
use ashgate_proto::identity::auth_service_client::AuthServiceClient;
use ashgate_proto::identity::internal_service_client::InternalServiceClient;
use ashgate_testkit::collector::deps::reqwest;
use ashgate_testkit::identity::{IdentityFixture, internal};
use tonic::transport::Channel;

async fn scrape(ops: std::net::SocketAddr) -> String {
    let response = reqwest::get(format!("http://{ops}/metrics")).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn calls_are_counted_by_the_status_they_really_ended_with() {
    let fx = IdentityFixture::start().await;
    let server = IdentityServer::bind(fx.identity.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let ops =
        OpsServer::bind(fx.identity.clone(), server.metrics(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let ops_addr = ops.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    tokio::spawn(ops.serve(std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();

    let refused = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest { email: "admin@localhost".into(), password: "not-the-password".into() })
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest { email: "admin@localhost".into(), password: "admin".into() })
        .await
        .unwrap();
    // A revocation stream opens (its headers say nothing about its end) and the client leaves.
    let stream = InternalServiceClient::new(channel.clone())
        .watch_revocations(internal(pb::WatchRevocationsRequest {}))
        .await
        .unwrap()
        .into_inner();
    drop(stream);

    let login = "method=\"/ashgate.identity.v1.AuthService/Login\"";
    let watch = "method=\"/ashgate.identity.v1.InternalService/WatchRevocations\"";
    let expected = [
        format!("ashgate_identity_rpc_calls_total{{{login},code=\"UNAUTHENTICATED\"}} 1"),
        format!("ashgate_identity_rpc_calls_total{{{login},code=\"OK\"}} 1"),
        format!("ashgate_identity_rpc_duration_seconds_count{{{login}}} 2"),
        format!("ashgate_identity_rpc_calls_total{{{watch},code=\"CANCELLED\"}} 1"),
    ];
    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(ops_addr).await;
        if expected.iter().all(|line| text.contains(line.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in &expected {
        assert!(text.contains(line.as_str()), "missing {line} in\n{text}");
    }
    // The stream was never counted as OK when its headers went out.
    assert!(!text.contains(&format!("{{{watch},code=\"OK\"}}")), "{text}");
    assert!(text.contains("ashgate_identity_ready 1"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

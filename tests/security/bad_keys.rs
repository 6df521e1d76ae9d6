//! Exports with a bad or missing key through the gateway's `POST /v1/traces`. The gateway used
//! to read the whole body, forward it, and relay the collector's refusal; under a flood the
//! collector closed connections the gateway then reused, and about 2.5 % of bad-key exports were
//! answered 503, which tells an exporter to retry (so every bad key multiplied its own traffic).
//! Now the gateway checks the credential itself before it reads anything: a bad key costs no
//! body read and is always 401 with Phoenix's text.

use std::collections::BTreeMap;
use std::time::Duration;

use ashgate_testkit::gateway::GatewayFixture;
use futures::future::join_all;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{export_body, status_of};

#[tokio::test]
async fn a_bad_key_is_refused_before_its_body_arrives() {
    let fixture = GatewayFixture::start().await;
    for authorization in ["Authorization: Bearer not-a-key\r\n", ""] {
        let mut stream = TcpStream::connect(fixture.addr).await.unwrap();
        // Announce 4 MB and send none of it: the answer must not wait for the body.
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: {}\r\n{authorization}Content-Type: application/x-protobuf\r\nContent-Length: 4000000\r\n\r\n",
            fixture.addr
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{authorization:?}: the gateway waited for the body"))
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
        assert_eq!(status_of(&answer), 401, "{answer}");
        assert!(answer.ends_with("Invalid token"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("www-authenticate: bearer"), "{answer}");
        // The unread body stays on the connection: the client is told not to reuse it.
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_keys_is_answered_401_every_time() {
    let fixture = GatewayFixture::start().await;
    let body = export_body(1, 100);
    let client = GatewayFixture::client();
    let url = fixture.url("/v1/traces");
    let workers = (0..8).map(|worker| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let mut statuses = BTreeMap::new();
            for i in 0..250 {
                let response = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .bearer_auth(format!("bad-key-{worker}-{}", i % 3))
                    .body(body.clone())
                    .send()
                    .await;
                let status = response.map_or(0, |r| r.status().as_u16());
                *statuses.entry(status).or_insert(0u32) += 1;
            }
            statuses
        }
    });
    let mut total = BTreeMap::new();
    for statuses in join_all(workers).await {
        for (status, count) in statuses {
            *total.entry(status).or_insert(0u32) += count;
        }
    }
    assert_eq!(total, BTreeMap::from([(401, 2000)]), "status: count of 2000 bad-key exports");
    // The same pooled client goes on to other requests (it hung here when refused connections
    // were not marked `Connection: close`).
    let answer = tokio::time::timeout(Duration::from_secs(10), client.get(fixture.url("/healthz")).send())
        .await
        .expect("a request after the flood was answered")
        .unwrap();
    assert_eq!(answer.status(), 200);
}

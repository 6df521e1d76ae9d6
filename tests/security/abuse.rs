//! Protocol abuse at the gateway, over raw TCP where a polite client cannot misbehave enough:
//! CR/LF in headers and in values that could reach a response header or a mail header,
//! oversized headers and bodies, slowloris (headers and bodies trickled), idle connections, the
//! connection cap, and a gzip bomb forwarded to the collector. Each gets a clear 4xx (or the
//! connection is closed) and never a 5xx, a hang or a panic.

use std::io::Write as _;
use std::time::Duration;

use ashgate_testkit::collector::deps::flate2::Compression;
use ashgate_testkit::collector::deps::flate2::write::GzEncoder;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_SECRET;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::{body_of, closed_within, raw_exchange, status_of, status_text};

const WAIT: Duration = Duration::from_secs(10);

/// A gateway whose connection and body deadlines are short, so the tests need not wait long.
async fn strict_gateway() -> GatewayFixture {
    GatewayFixture::start_with(true, |env| {
        env.with("ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS", "1")
            .with("ASHGATE_HTTP_BODY_TIMEOUT_SECONDS", "1")
            .with("ASHGATE_HTTP_MAX_CONNECTIONS", "40")
    })
    .await
}

#[tokio::test]
async fn cr_and_lf_in_headers_never_split_anything() {
    let fixture = GatewayFixture::start().await;
    let addr = fixture.addr;
    // A bare CR inside a header value, and a header line folded onto the next (obs-fold): the
    // request is malformed and refused before any route sees it.
    for request in [
        &b"GET /v1/user HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer a\rInjected: b\r\n\r\n"[..],
        &b"GET /v1/user HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n"[..],
        &b"GET /v1/user\r\nInjected: b HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        &b"GET /v1/user HTTP/1.1\r\nHost: localhost\r\nX\0: y\r\n\r\n"[..],
    ] {
        let answer = raw_exchange(addr, request, WAIT).await;
        assert_eq!(status_of(&answer), 400, "{:?} -> {answer:?}", String::from_utf8_lossy(request));
    }
    // Encoded CR/LF in a return URL never reaches a Location header.
    for path in [
        "/oauth2/unknown/login?returnUrl=/%0d%0aSet-Cookie:%20pwned=1",
        "/login?returnUrl=/%0d%0aSet-Cookie:%20pwned=1",
        "/login?error=%0d%0aSet-Cookie:%20pwned=1",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(addr, request.as_bytes(), WAIT).await;
        let head = answer.split("\r\n\r\n").next().unwrap_or("");
        assert!(status_of(&answer) < 500 && status_of(&answer) > 0, "{path}: {answer}");
        assert!(!head.to_ascii_lowercase().contains("pwned"), "{path}: header injected: {head}");
    }
    // CR/LF inside JSON strings: an email with a mail header in it is just a wrong email.
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .json(&serde_json::json!({"email": "admin@localhost\r\nBcc: mallory@evil.test", "password": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(response).await, (401, "Invalid email and/or password".to_owned()));
}

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused_with_a_status() {
    let fixture = GatewayFixture::start().await;
    let addr = fixture.addr;
    // One enormous header: hyper refuses it (431) without buffering it all.
    let huge =
        format!("GET /v1/user HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(1024 * 1024));
    let answer = raw_exchange(addr, huge.as_bytes(), WAIT).await;
    assert_eq!(status_of(&answer), 431, "{answer:.200}");
    // Too many headers.
    let mut many = String::from("GET /v1/user HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..500 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(status_of(&raw_exchange(addr, many.as_bytes(), WAIT).await), 431);
    // A long credential within hyper's limits is no credential: 401 with Phoenix's text.
    let long = format!("Bearer {}", "a".repeat(64 * 1024));
    let response = GatewayFixture::client()
        .get(fixture.url("/v1/user"))
        .header("authorization", long)
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(response).await, (401, "Invalid token".to_owned()));
    let cookie = format!("phoenix-access-token={}", "a".repeat(64 * 1024));
    let response =
        GatewayFixture::client().get(fixture.url("/v1/user")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(status_text(response).await, (401, "Invalid token".to_owned()));

    // Bodies: over the JSON limit, over the OTLP limit, and a declared length that is a lie.
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(response).await, (413, "Request body is larger than 65536 bytes".to_owned()));
    let response = GatewayFixture::client()
        .post(fixture.url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .body(vec![0u8; 5 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(response).await, (413, "Request body is larger than 4194304 bytes".to_owned()));
    let declared = b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{";
    let answer = raw_exchange(addr, declared, WAIT).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert_eq!(body_of(&answer), "Request body is larger than 65536 bytes");
    // Deeply nested JSON is a 422 with a message, not a stack overflow.
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    let (status, text) = status_text(response).await;
    assert_eq!(status, 422);
    assert!(text.starts_with("Invalid request body: recursion limit exceeded"), "{text}");
}

/// Slowloris: a client that sends its headers a byte at a time, or never finishes them, or
/// opens a connection and says nothing, is cut off after the header deadline; one that
/// trickles its body gets 408 after the body deadline. (Before: `axum::serve` runs hyper
/// without a timer, so such connections lived for ever.)
#[tokio::test]
async fn slow_headers_slow_bodies_and_idle_connections_are_cut_off() {
    let fixture = strict_gateway().await;
    let addr = fixture.addr;

    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut idle, WAIT).await.is_some(), "an idle connection was never closed");

    let mut slow = TcpStream::connect(addr).await.unwrap();
    let trickle = async {
        for byte in b"GET /v1/user HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".iter().chain([b'a'; 200].iter()) {
            if slow.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    let cut = tokio::time::timeout(Duration::from_secs(30), trickle).await.unwrap_or(false)
        || closed_within(&mut slow, WAIT).await.is_some();
    assert!(cut, "a connection trickling its headers was never cut off");

    let body = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = body.into_split();
    writer
        .write_all(b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    // A byte now and then keeps the connection busy but never finishes the body.
    let trickler = tokio::spawn(async move {
        for _ in 0..90 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, async {
        use tokio::io::AsyncReadExt as _;
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&answer).contains("within") {
                break;
            }
        }
    })
    .await;
    trickler.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert_eq!(body_of(&answer), "Request body was not received within 1 s");
}

/// More connections than `ASHGATE_HTTP_MAX_CONNECTIONS` are closed at once; the ones within
/// the cap are held open (a 30 s header deadline, so they do not end on their own during the
/// test), and capacity comes back only when they end.
#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let fixture = GatewayFixture::start_with(true, |env| {
        env.with("ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS", "30").with("ASHGATE_HTTP_MAX_CONNECTIONS", "40")
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(fixture.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(fixture.addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_millis(900)).await.is_some(),
        "the 41st connection was kept"
    );
    // While the 40 are held, the cap stays full: a request is not served.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let answer = raw_exchange(
        fixture.addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(status_of(&answer), 0, "served over the cap: {answer:?}");
    for stream in &mut held {
        assert!(
            closed_within(stream, Duration::from_millis(1)).await.is_none(),
            "a held connection ended on its own"
        );
    }
    drop(held);
    let served = crate::support::eventually(Duration::from_secs(5), || async {
        let answer = raw_exchange(
            fixture.addr,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            WAIT,
        )
        .await;
        status_of(&answer) == 200
    })
    .await;
    assert!(served, "capacity did not come back");
}

/// A gzip bomb posted to the gateway's `/v1/traces` is forwarded compressed; the collector
/// stops inflating at its limit (413). The collector alone: `tests/collector/http.rs`.
#[tokio::test]
async fn gzip_bomb_through_the_gateway_is_413() {
    let fixture = GatewayFixture::start().await;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&vec![0u8; 256 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024);
    let response = GatewayFixture::client()
        .post(fixture.url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .body(bomb)
        .send()
        .await
        .unwrap();
    let (status, text) = status_text(response).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.starts_with("Request body is larger than the limit of"), "{text}");
    assert_eq!(fixture.collector.span_count().await, 0);
}

/// collector-svc's OTLP/HTTP port uses the same server loop: an idle connection and one that
/// never finishes its headers are closed after the 10 s header deadline. (Before: `axum::serve`
/// kept both for ever.)
#[tokio::test]
async fn collector_http_cuts_off_idle_and_half_sent_connections() {
    let fixture = ashgate_testkit::collector::CollectorFixture::start().await;
    let mut idle = TcpStream::connect(fixture.http_addr).await.unwrap();
    let mut half = TcpStream::connect(fixture.http_addr).await.unwrap();
    half.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\n",
    )
    .await
    .unwrap();
    let deadline = Duration::from_secs(25);
    let (idle_closed, half_closed) =
        tokio::join!(closed_within(&mut idle, deadline), closed_within(&mut half, deadline));
    assert!(idle_closed.is_some(), "an idle connection to the collector was never closed");
    assert!(half_closed.is_some(), "a half-sent request to the collector was never cut off");
    // It still serves.
    let answer = raw_exchange(
        fixture.http_addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
}

/// Issue 18.4: clients that pipeline requests for a large response and never read held every
/// connection slot for ever (header and body deadlines do not cover a stalled write), and
/// `/healthz` failed for everyone. A write that waits `ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS` for
/// the client ends its connection and frees the slot.
#[tokio::test]
async fn clients_that_stop_reading_are_cut_off_and_free_their_slots() {
    let fixture = GatewayFixture::start_with(true, |env| {
        env.with("ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS", "30")
            .with("ASHGATE_HTTP_MAX_CONNECTIONS", "20")
            .with("ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS", "2")
    })
    .await;
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(200);
    let mut held = Vec::new();
    for _ in 0..20 {
        let stream = TcpStream::connect(fixture.addr).await.unwrap();
        // Written in the background: the server stops reading requests once its replies back up.
        let request = request.clone();
        let (mut reader, mut writer) = stream.into_split();
        tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            std::future::pending::<()>().await;
            drop(writer);
        });
        held.push(async move {
            // Never reads until asked whether the server closed it.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut buf = vec![0u8; 64 * 1024];
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await
        });
    }
    // The slots free once the stalled writes pass their deadline.
    let served = crate::support::eventually(Duration::from_secs(10), || async {
        let answer = raw_exchange(
            fixture.addr,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(1),
        )
        .await;
        status_of(&answer) == 200
    })
    .await;
    assert!(served, "stalled readers kept every slot");
    // And each stalled connection was closed by the server (reading it now reaches its end).
    for ended in futures::future::join_all(held).await {
        assert!(ended.is_ok(), "a stalled connection was kept open");
    }
}

/// A connection lives at most `ASHGATE_HTTP_MAX_CONNECTION_AGE_SECONDS`: after it, the server
/// closes it between requests, well before the idle (header) deadline would.
#[tokio::test]
async fn connections_close_at_their_maximum_age() {
    let fixture = GatewayFixture::start_with(true, |env| {
        env.with("ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS", "30")
            .with("ASHGATE_HTTP_MAX_CONNECTION_AGE_SECONDS", "1")
    })
    .await;
    let mut stream = TcpStream::connect(fixture.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await.is_some(), "kept past its age");
}

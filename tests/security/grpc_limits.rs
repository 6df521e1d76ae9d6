//! identity-svc's gRPC port, as a client that reaches it (every container of a deployment can)
//! but holds no credential would use it: messages used to be read up to tonic's 4 MiB each on
//! an unlimited number of streams and connections (200 half-sent 4 MB Login calls on one
//! connection took a replica from 135 MB to 806 MB). Now a message over 64 KiB is refused,
//! streams per connection are bounded, and connections past `ASHGATE_IDENTITY_MAX_CONNECTIONS`
//! are closed at once.

use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::IdentityFixture;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

#[tokio::test]
async fn a_large_message_is_refused_before_it_is_read() {
    let fx = IdentityFixture::start().await;
    let login = pb::LoginRequest { email: "admin@localhost".into(), password: "a".repeat(100 * 1024) };
    let status = fx.auth().login(login).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    // A normal call still works on the same server.
    fx.login("admin@localhost", "admin").await;
}

#[tokio::test]
async fn connections_past_the_cap_are_closed() {
    let fx = IdentityFixture::start_with(|env| env.with("ASHGATE_IDENTITY_MAX_CONNECTIONS", "4")).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(fx.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(fx.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the fifth connection is closed at once: {closed:?}");
    // Once the held connections go, new ones are served again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    fx.login("admin@localhost", "admin").await;
}

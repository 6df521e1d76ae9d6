//! DNS rebinding: a page on `attacker.test` whose name then resolves to 127.0.0.1 talks to a
//! gateway on this machine as its own origin, so it could read every trace through a local
//! ashgate with authentication off (the default), and post exports past the same-origin CSRF
//! rule. A gateway on loopback now answers only requests whose `Host` names it (localhost, a
//! loopback address, `PHOENIX_ROOT_URL`'s host, a trusted origin, `ASHGATE_ALLOWED_HOSTS`).

use ashgate_testkit::gateway::GatewayFixture;

use crate::support::status_text;

#[tokio::test]
async fn a_rebound_name_is_not_this_gateway() {
    let fixture =
        GatewayFixture::start_with(false, |env| env.with("PHOENIX_ROOT_URL", "https://observe.example.com/"))
            .await;
    let port = fixture.addr.port();
    let client = GatewayFixture::client();
    for host in [format!("rebind.attacker.test:{port}"), "attacker.test".to_owned()] {
        let response = client.get(fixture.url("/v1/projects")).header("host", &host).send().await.unwrap();
        assert_eq!(status_text(response).await, (421, "Unknown host".to_owned()), "{host}");
        let post = client
            .post(fixture.url("/v1/traces"))
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 421, "{host}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "observe.example.com".to_owned(),
    ] {
        let response = client.get(fixture.url("/v1/projects")).header("host", &host).send().await.unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn allowed_hosts_are_configured() {
    let fixture =
        GatewayFixture::start_with(false, |env| env.with("ASHGATE_ALLOWED_HOSTS", "ashgate.internal")).await;
    let client = GatewayFixture::client();
    let ok =
        client.get(fixture.url("/v1/projects")).header("host", "ashgate.internal:6006").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let refused =
        client.get(fixture.url("/v1/projects")).header("host", "other.internal").send().await.unwrap();
    assert_eq!(refused.status(), 421);
}

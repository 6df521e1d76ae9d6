//! Login CSRF: a page on another site used to sign a victim's browser into the attacker's
//! account with `fetch(…/auth/login, {method: "POST", body: new Blob([json])})` — no
//! `Content-Type`, so no CORS preflight — and got 204 with session cookies. Now a
//! state-changing request whose `Origin` (or `Referer`) is neither ashgate's own nor trusted is
//! refused whatever its content type, JSON routes take only `application/json` and form pages
//! only `application/x-www-form-urlencoded` (415 otherwise).

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_SECRET;
use serde_json::json;

use crate::support::status_text;

const CREDENTIALS: &str = r#"{"email": "admin@localhost", "password": "admin"}"#;

#[tokio::test]
async fn a_cross_site_sign_in_is_refused_whatever_its_content_type() {
    let fixture = GatewayFixture::start().await;
    let client = GatewayFixture::client();
    let login = |origin: Option<&str>, content_type: Option<&str>| {
        let mut request = client.post(fixture.url("/auth/login")).body(CREDENTIALS);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    for content_type in [None, Some("application/json"), Some("text/plain"), Some("application/octet-stream")]
    {
        let response = login(Some("http://evil.example"), content_type).await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{content_type:?}: no session");
        assert_eq!(status_text(response).await, (401, "untrusted origin".into()), "{content_type:?}");
    }
    // `Origin: null` (a sandboxed frame) is nobody's origin.
    let response = login(Some("null"), Some("application/json")).await.unwrap();
    assert_eq!(status_text(response).await, (401, "untrusted origin".into()));

    // Without an Origin: a body a page could post cross-site (a form type) must name one...
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
    {
        let response = login(None, Some(content_type)).await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{content_type:?}: no session");
        assert_eq!(status_text(response).await, (401, "untrusted origin".into()), "{content_type:?}");
    }
    // ...and a script's request reads as JSON only when it says it is JSON.
    for content_type in [None, Some("application/octet-stream"), Some("application/jsonx")] {
        let response = login(None, content_type).await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{content_type:?}: no session");
        assert_eq!(
            status_text(response).await,
            (415, "Content-Type must be application/json".into()),
            "{content_type:?}"
        );
    }
    let own = fixture.origin();
    assert_eq!(login(Some(&own), Some("application/json; charset=utf-8")).await.unwrap().status(), 204);
    assert_eq!(login(None, Some("application/json")).await.unwrap().status(), 204);

    // The sign-in form takes a form only.
    let form = client
        .post(fixture.url("/login"))
        .header("origin", &own)
        .header("content-type", "application/json")
        .body(CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_text(form).await,
        (415, "Content-Type must be application/x-www-form-urlencoded".into())
    );

    // Any state-changing request naming a foreign origin is refused, a bearer credential or not.
    let create = client
        .post(fixture.url("/v1/system/api_keys"))
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .header("origin", "https://evil.example")
        .json(&json!({"data": {"name": "cross-site"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(create).await, (401, "untrusted origin".into()));
    let referer = client
        .post(fixture.url("/v1/system/api_keys"))
        .header("authorization", format!("Bearer {ADMIN_SECRET}"))
        .header("referer", "https://evil.example/page")
        .json(&json!({"data": {"name": "cross-site"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(referer).await, (401, "untrusted referer".into()));
}

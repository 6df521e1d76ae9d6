//! The origin checks: Phoenix's trusted list, ashgate's same-origin rule for cookie and form
//! requests, and the form token on settings pages; members refused admin actions on the page.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use serde_json::json;

use crate::support::{admin_cookies, login_cookies, status_text};

/// The form token embedded in a settings page.
fn form_token(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn settings_html(fixture: &GatewayFixture, cookies: &str) -> String {
    let response = GatewayFixture::client()
        .get(fixture.url("/settings"))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn same_origin_rule_without_a_trusted_list() {
    let fixture = GatewayFixture::start().await;
    let cookies = admin_cookies(&fixture).await;
    let client = GatewayFixture::client();
    let token = form_token(&settings_html(&fixture, &cookies).await);
    let rename = |origin: Option<String>, referer: Option<String>, token: &str| {
        let mut request = client
            .post(fixture.url("/settings/username"))
            .header("cookie", &cookies)
            .form(&[("csrf", token), ("username", "root")]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(referer) = referer {
            request = request.header("referer", referer);
        }
        request.send()
    };
    // No Origin and no Referer, or a foreign one: 401 before anything happens.
    assert_eq!(
        status_text(rename(None, None, &token).await.unwrap()).await,
        (401, "untrusted origin".to_owned())
    );
    let foreign = rename(Some("https://evil.example".into()), None, &token).await.unwrap();
    assert_eq!(status_text(foreign).await, (401, "untrusted origin".to_owned()));
    let foreign_referer = rename(None, Some("https://evil.example/x".into()), &token).await.unwrap();
    assert_eq!(status_text(foreign_referer).await, (401, "untrusted referer".to_owned()));
    // Same origin but no form token: refused on the page.
    let (status, body) = status_text(rename(Some(fixture.origin()), None, "forged").await.unwrap()).await;
    assert_eq!(status, 403);
    assert!(body.contains("This form has expired"), "{body}");
    // Same origin with the token: done.
    let ok = rename(None, Some(format!("{}/settings", fixture.origin())), &token).await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/settings?done=username-saved");
    // A cookie-authenticated JSON call needs the origin too; a bearer script does not.
    let api = client
        .post(fixture.url("/v1/user/api_keys"))
        .header("cookie", &cookies)
        .json(&json!({"data": {"name": "k"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(api).await, (401, "untrusted origin".to_owned()));
    let api = client
        .post(fixture.url("/v1/user/api_keys"))
        .header("cookie", &cookies)
        .header("origin", fixture.origin())
        .json(&json!({"data": {"name": "k"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 201);
    // Sign-in forms from another site are refused too (login CSRF).
    let form = client
        .post(fixture.url("/login"))
        .form(&[("email", "admin@localhost"), ("password", "x")])
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(form).await, (401, "untrusted origin".to_owned()));
}

#[tokio::test]
async fn phoenix_trusted_origins() {
    let fixture = GatewayFixture::start_with(true, |env| {
        env.with("PHOENIX_CSRF_TRUSTED_ORIGINS", "https://phoenix.example.com:8443,http://127.0.0.1")
    })
    .await;
    let client = GatewayFixture::client();
    // Every method, every route: a present Origin/Referer must be trusted.
    let get =
        client.get(fixture.url("/healthz")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(status_text(get).await, (401, "untrusted origin".to_owned()));
    let referer =
        client.get(fixture.url("/healthz")).header("referer", "https://evil.example/").send().await.unwrap();
    assert_eq!(status_text(referer).await, (401, "untrusted referer".to_owned()));
    assert!(referer_ok(&client, &fixture, "https://phoenix.example.com/anything").await);
    assert!(referer_ok(&client, &fixture, &fixture.origin()).await);
    // Without either header a script passes, as in Phoenix.
    assert_eq!(client.get(fixture.url("/healthz")).send().await.unwrap().status(), 200);
}

async fn referer_ok(client: &reqwest::Client, fixture: &GatewayFixture, referer: &str) -> bool {
    client.get(fixture.url("/healthz")).header("referer", referer).send().await.unwrap().status() == 200
}

#[tokio::test]
async fn members_are_refused_admin_actions_on_the_page() {
    let fixture = GatewayFixture::start().await;
    fixture.identity.user_with_role("max", ashgate_proto::identity::Role::Member).await;
    let cookies = login_cookies(&fixture, "max@example.com", "user-password-1").await;
    let html = settings_html(&fixture, &cookies).await;
    assert!(!html.contains("id=\"users\"") && !html.contains("System API keys"));
    let token = form_token(&html);
    let forged = GatewayFixture::client()
        .post(fixture.url("/settings/users"))
        .header("cookie", &cookies)
        .header("origin", fixture.origin())
        .form(&[
            ("csrf", token.as_str()),
            ("email", "x@y.z"),
            ("username", "x"),
            ("role", "ADMIN"),
            ("password", "pass-word-1"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_text(forged).await;
    assert_eq!(status, 403);
    assert!(body.contains("Only admin or system users can perform this action."), "shown in the page");
    assert!(body.contains("<h1>Settings</h1>"), "the page, not a bare error");
    // Without a session, pages send the browser to sign in.
    let anonymous = GatewayFixture::client().get(fixture.url("/settings")).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
}

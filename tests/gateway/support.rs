//! Helpers shared by the gateway tests.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use ashgate_testkit::identity::ADMIN_PASSWORD;
use reqwest::Response;

pub use ashgate_testkit::cookies::{cookie, set_cookies};

/// Status and body text, for assertions that show both.
pub async fn status_text(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The body of `GET path` (under the root path), whatever the status.
pub async fn page(fixture: &GatewayFixture, path: &str) -> String {
    GatewayFixture::client().get(fixture.url(path)).send().await.unwrap().text().await.unwrap()
}

/// Asserts a 401 with a Bearer challenge and this text.
pub async fn assert_401(response: Response, text: &str) {
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(status_text(response).await, (401, text.to_owned()));
    assert!(challenge.unwrap_or_default().starts_with("Bearer"), "401 without WWW-Authenticate: Bearer");
}

/// The admin's session cookies through `POST /auth/login` (after the forced change).
pub async fn admin_cookies(fixture: &GatewayFixture) -> String {
    fixture.identity.admin_token().await;
    login_cookies(fixture, "admin@localhost", ADMIN_PASSWORD).await
}

/// `Cookie` header value after signing in through the gateway.
pub async fn login_cookies(fixture: &GatewayFixture, email: &str, password: &str) -> String {
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "login {email}");
    set_cookies(response.headers())
        .iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect::<Vec<_>>()
        .join("; ")
}

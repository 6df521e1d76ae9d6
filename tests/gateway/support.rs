//! Helpers shared by the gateway tests.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use ashgate_testkit::identity::ADMIN_PASSWORD;
use reqwest::Response;
use reqwest::header::{HeaderMap, SET_COOKIE};

/// One parsed `Set-Cookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attribute name (lower-cased) → value ("" for flags).
    pub attributes: Vec<(String, String)>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == &name.to_ascii_lowercase()).map(|(_, v)| v.as_str())
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attributes = parts
                .map(|a| match a.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                    None => (a.to_ascii_lowercase(), String::new()),
                })
                .collect();
            SetCookie { name: name.to_owned(), value: value.trim_matches('"').to_owned(), attributes }
        })
        .collect()
}

pub fn cookie<'a>(cookies: &'a [SetCookie], name: &str) -> &'a SetCookie {
    cookies.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no Set-Cookie {name} in {cookies:?}"))
}

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

//! The OAuth2 / OIDC sign-in flow through a gateway against the real OpenID Provider of
//! [`crate::oidc`], driven at the HTTP level: cookies and redirects followed by hand, as a
//! browser would.

use ashgate_identity_client::env::Env;
use serde_json::Value;

use crate::cookies::{SetCookie, cookie, set_cookies};
use crate::gateway::GatewayFixture;
use crate::oidc::{Consent, OidcProvider};

/// The client secret of every test client.
pub const CLIENT_SECRET: &str = "client-secret-0123456789";

/// One provider of a test: its route name and extra `PHOENIX_OAUTH2_<IDP>_*` suffix values.
pub struct Idp<'a> {
    /// The `<IDP>` in the variable names and the route `/oauth2/<idp>/login`.
    pub name: &'a str,
    /// Suffix and value pairs beyond the client id, secret and discovery URL.
    pub settings: &'a [(&'a str, &'a str)],
}

impl<'a> Idp<'a> {
    /// A provider named `name` with these extra settings.
    pub const fn new(name: &'a str, settings: &'a [(&'a str, &'a str)]) -> Self {
        Self { name, settings }
    }
}

/// The client id registered for provider `idp`.
pub fn client_id(idp: &str) -> String {
    format!("{idp}-client")
}

/// `PHOENIX_OAUTH2_<IDP>_*` for `idps`, all pointing at `op`.
pub fn oauth2_env(mut env: Env, op: &OidcProvider, idps: &[Idp<'_>]) -> Env {
    for idp in idps {
        let prefix = format!("PHOENIX_OAUTH2_{}_", idp.name.to_ascii_uppercase());
        env = env
            .with(&format!("{prefix}CLIENT_ID"), client_id(idp.name))
            .with(&format!("{prefix}CLIENT_SECRET"), CLIENT_SECRET)
            .with(&format!("{prefix}OIDC_CONFIG_URL"), op.discovery_url());
        for (suffix, value) in idp.settings {
            env = env.with(&format!("{prefix}{suffix}"), *value);
        }
    }
    env
}

/// A gateway with these providers (rate limits off unless `rate_limited`), the clients
/// registered at `op` with the gateway's callback URLs.
pub async fn gateway_for(
    op: &OidcProvider,
    idps: &[Idp<'_>],
    identity_env: &[(&str, &str)],
    gateway_env: &[(&str, &str)],
) -> GatewayFixture {
    let identity_env: Vec<(String, String)> =
        identity_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let fixture = GatewayFixture::start_configured(
        true,
        |mut env| {
            for (k, v) in &identity_env {
                env = env.with(k, v.clone());
            }
            env
        },
        |env| {
            let mut env = oauth2_env(env, op, idps).with("PHOENIX_DISABLE_RATE_LIMIT", "true");
            for (k, v) in gateway_env {
                env = env.with(k, *v);
            }
            env
        },
    )
    .await;
    for idp in idps {
        let method = idp
            .settings
            .iter()
            .find(|(k, _)| *k == "TOKEN_ENDPOINT_AUTH_METHOD")
            .map_or("client_secret_basic", |(_, v)| *v);
        let callback = fixture.url(&format!("/oauth2/{}/tokens", idp.name));
        op.register_client(&client_id(idp.name), Some(CLIENT_SECRET), &callback, method).await;
    }
    fixture
}

/// A started authorization request: where the browser goes, and the gateway's cookies.
pub struct Started {
    /// The provider's authorization URL the gateway redirected to.
    pub authorize_url: String,
    /// The cookies the gateway set with the redirect (state, nonce, verifier).
    pub cookies: Vec<SetCookie>,
}

impl Started {
    /// The `Cookie` header a browser would send back to the gateway.
    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|c| format!("{}={}", c.name, c.value)).collect::<Vec<_>>().join("; ")
    }
}

/// `GET /oauth2/<idp>/login[?returnUrl=…]`, expecting the 302 to the provider.
pub async fn start(fixture: &GatewayFixture, idp: &str, return_url: Option<&str>) -> Started {
    let response = login_request(fixture, idp, return_url).await;
    assert_eq!(response.status(), 302, "login for {idp}: {:?}", response.headers().get("location"));
    let authorize_url = location(&response);
    Started { authorize_url, cookies: set_cookies(response.headers()) }
}

/// `GET /oauth2/<idp>/login[?returnUrl=…]` as it is.
pub async fn login_request(
    fixture: &GatewayFixture,
    idp: &str,
    return_url: Option<&str>,
) -> reqwest::Response {
    let mut url = reqwest::Url::parse(&fixture.url(&format!("/oauth2/{idp}/login"))).unwrap();
    if let Some(return_url) = return_url {
        url.query_pairs_mut().append_pair("returnUrl", return_url);
    }
    GatewayFixture::client().get(url).send().await.unwrap()
}

/// The `Location` header.
pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").expect("a Location header").to_str().unwrap().to_owned()
}

/// The gateway's callback, as the browser would call it.
pub async fn callback(callback_url: &str, cookie_header: &str) -> reqwest::Response {
    let mut request = GatewayFixture::client().get(callback_url);
    if !cookie_header.is_empty() {
        request = request.header("cookie", cookie_header);
    }
    request.send().await.unwrap()
}

/// The `error` code of a failure redirect (307 to `/login?error=…`), or `None`.
pub fn login_error(response: &reqwest::Response) -> Option<String> {
    if response.status() != 307 {
        return None;
    }
    let target = reqwest::Url::parse("http://x").unwrap().join(&location(response)).unwrap();
    assert_eq!(target.path(), "/login", "failures go to the sign-in page");
    target.query_pairs().find(|(k, _)| k == "error").map(|(_, v)| v.into_owned())
}

/// The whole flow for `account`: gateway → provider's form → gateway callback.
pub async fn sign_in(
    fixture: &GatewayFixture,
    op: &OidcProvider,
    idp: &str,
    account: &str,
    password: &str,
) -> reqwest::Response {
    let started = start(fixture, idp, None).await;
    let back = op.authorize(&started.authorize_url, Consent::SignIn(account, password)).await;
    callback(&back, &started.cookie_header()).await
}

/// The `Cookie` header with the session cookies a successful callback set.
pub fn session_cookies(response: &reqwest::Response) -> String {
    let cookies = set_cookies(response.headers());
    ["phoenix-access-token", "phoenix-refresh-token"]
        .iter()
        .map(|name| format!("{name}={}", cookie(&cookies, name).value))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `GET /v1/user` with these cookies: the `data` object.
pub async fn whoami(fixture: &GatewayFixture, cookie_header: &str) -> Value {
    let response = GatewayFixture::client()
        .get(fixture.url("/v1/user"))
        .header("cookie", cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET /v1/user");
    response.json::<Value>().await.unwrap()["data"].clone()
}

/// Signs `account` in and returns who they are.
pub async fn signed_in_user(fixture: &GatewayFixture, op: &OidcProvider, idp: &str, account: &str) -> Value {
    let response = sign_in(fixture, op, idp, account, &format!("{account}-password")).await;
    assert_eq!(response.status(), 302, "sign-in of {account} via {idp}: {:?}", login_error(&response));
    let cookies = session_cookies(&response);
    whoami(fixture, &cookies).await
}

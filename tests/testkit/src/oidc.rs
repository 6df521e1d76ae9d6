//! A real OpenID Provider on loopback for OAuth2 sign-in tests: the npm package
//! `oidc-provider` driven by `tests/oidc-provider/provider.mjs` (`npm ci --prefix
//! tests/oidc-provider` installs it), plus a small HTTP driver for its login form so tests can
//! complete an authorization request without a browser.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// A running provider, stopped on drop.
pub struct OidcProvider {
    /// `http://127.0.0.1:<port>`.
    pub issuer: String,
    http: reqwest::Client,
    _child: Child,
}

/// What the person does on the provider's page.
#[derive(Debug, Clone, Copy)]
pub enum Consent<'a> {
    /// Signs in with this account and password.
    SignIn(&'a str, &'a str),
    /// Presses "Cancel" (the provider answers `error=access_denied`).
    Cancel,
}

fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../oidc-provider")
}

impl OidcProvider {
    /// The provider with its default accounts (`alice`, `bob`, `nomail`).
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The provider with extra environment (`OIDC_ACCOUNTS`, `OIDC_ID_TOKEN_CLAIMS`,
    /// `OIDC_MODE`, `OIDC_PORT`).
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = directory();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run `cargo xtask deps`"
        );
        let node = std::env::var("ASHGATE_NODE").unwrap_or_else(|_| "node".into());
        let mut command = Command::new(&node);
        command
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {node}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(issuer) = value["issuer"].as_str()
                {
                    return Some(issuer.to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("the OpenID Provider did not start");
        // Keep reading: a closed pipe would kill the provider at its next log line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let provider = Self { issuer, http, _child: child };
        // Ready means the discovery document is served.
        let discovery = provider.http.get(provider.discovery_url()).send().await.expect("discovery");
        assert!(discovery.status().is_success(), "discovery: {}", discovery.status());
        provider
    }

    /// The discovery URL (`PHOENIX_OAUTH2_<IDP>_OIDC_CONFIG_URL`).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Registers (or replaces) a client.
    pub async fn register_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
        redirect_uri: &str,
        auth_method: &str,
    ) {
        let mut metadata = serde_json::json!({
            "client_id": client_id,
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": auth_method,
        });
        if let Some(secret) = secret {
            metadata["client_secret"] = secret.into();
        }
        let response = self
            .http
            .post(format!("{}/__test/clients", self.issuer))
            .json(&metadata)
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), 204, "client registration");
    }

    /// Makes the token endpoint misbehave from now on ("" = behave).
    pub async fn set_mode(&self, mode: &str) {
        let response = self
            .http
            .post(format!("{}/__test/mode", self.issuer))
            .json(&serde_json::json!({ "mode": mode }))
            .send()
            .await
            .expect("mode");
        assert_eq!(response.status(), 204, "mode");
    }

    /// Follows an authorization request through the provider's login form, like a browser
    /// would, and returns where the provider finally sends the browser (the relying party's
    /// callback URL with `code` and `state`, or with `error`).
    pub async fn authorize(&self, authorize_url: &str, consent: Consent<'_>) -> String {
        let mut jar: BTreeMap<String, String> = BTreeMap::new();
        let mut url = authorize_url.to_owned();
        let mut submitted = false;
        for _ in 0..10 {
            if !url.starts_with(&self.issuer) {
                return url;
            }
            let response = self.send(self.http.get(&url), &mut jar).await;
            if let Some(next) = location(&response, &url) {
                url = next;
                continue;
            }
            let page = response.text().await.unwrap_or_default();
            assert!(!submitted, "the provider did not accept the sign-in: {page}");
            assert!(page.contains("<form"), "expected the provider's login form at {url}: {page}");
            let uid = url.rsplit('/').next().unwrap_or_default().to_owned();
            let request = match consent {
                Consent::SignIn(login, password) => self
                    .http
                    .post(format!("{}/interaction/{uid}/login", self.issuer))
                    .form(&[("login", login), ("password", password)]),
                Consent::Cancel => self.http.post(format!("{}/interaction/{uid}/abort", self.issuer)),
            };
            let response = self.send(request, &mut jar).await;
            submitted = true;
            url = location(&response, &url).unwrap_or_else(|| panic!("no redirect after the login form"));
        }
        panic!("too many redirects at the provider");
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        jar: &mut BTreeMap<String, String>,
    ) -> reqwest::Response {
        let cookies = jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookies.is_empty() { request } else { request.header(COOKIE, cookies) };
        let response = request.send().await.expect("provider request");
        for value in response.headers().get_all(SET_COOKIE) {
            let Some((name, value)) = value.to_str().ok().and_then(|v| v.split(';').next()?.split_once('='))
            else {
                continue;
            };
            if value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        response
    }
}

fn location(response: &reqwest::Response, base: &str) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    let value = response.headers().get(LOCATION)?.to_str().ok()?;
    Some(url::Url::parse(base).ok()?.join(value).ok()?.to_string())
}

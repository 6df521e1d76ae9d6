//! A minimal W3C WebDriver client over reqwest (already in the tree), driving Debian's
//! `chromium` through `chromedriver`: no second HTTP stack, no browser download.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ashgate_testkit::gateway::deps::base64::Engine as _;
use ashgate_testkit::gateway::deps::base64::engine::general_purpose::STANDARD;
use ashgate_testkit::gateway::deps::reqwest;
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free port, killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile_dir::Dir,
}

/// A temporary Chromium profile directory.
mod tempfile_dir {
    use std::path::PathBuf;

    pub struct Dir(pub PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "ashgate-chromium-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Where the browser binaries are, or why the browser tests cannot run.
pub fn binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var("ASHGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver = std::env::var("ASHGATE_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let (chromium, driver) = (PathBuf::from(chromium), PathBuf::from(driver));
    (chromium.exists() && driver.exists()).then_some((chromium, driver))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Driver {
    /// Starts chromedriver and waits until it is ready.
    pub async fn start(driver: &Path) -> Self {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base, http, _profile: tempfile_dir::Dir::new() }
    }

    /// A headless Chromium session with a fresh profile.
    pub async fn session(&self, chromium: &Path) -> Browser {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", self._profile.0.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args}
        }}});
        let reply =
            call(&self.http, reqwest::Method::POST, &format!("{}/session", self.base), Some(capabilities))
                .await;
        let id = reply["value"]["sessionId"].as_str().expect("session id").to_owned();
        Browser { http: self.http.clone(), base: format!("{}/session/{id}", self.base) }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    let value: Value = response.json().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    assert!(status.is_success(), "WebDriver {method} {url}: {status} {value}");
    value
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

/// An element reference.
#[derive(Clone)]
pub struct Element(String);

impl Browser {
    async fn post(&self, path: &str, body: Value) -> Value {
        call(&self.http, reqwest::Method::POST, &format!("{}{path}", self.base), Some(body)).await["value"]
            .clone()
    }

    async fn get(&self, path: &str) -> Value {
        call(&self.http, reqwest::Method::GET, &format!("{}{path}", self.base), None).await["value"].clone()
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits (up to 10 s) until the URL's path ends with `suffix` (navigation after a click may
    /// still be under way when the click returns), and returns the URL.
    pub async fn wait_for_path(&self, suffix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            let path = url.split(['?', '#']).next().unwrap_or_default();
            if path.ends_with(suffix) {
                return url;
            }
            assert!(Instant::now() < deadline, "expected a page ending in {suffix}, still at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        self.get("/source").await.as_str().unwrap_or_default().to_owned()
    }

    /// Elements matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        let found = self.post("/elements", json!({"using": "css selector", "value": css})).await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
            .collect()
    }

    /// The first element matching a CSS selector, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(element) = self.all(css).await.into_iter().next() {
                return element;
            }
            assert!(Instant::now() < deadline, "no element {css} on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into the element matching `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/clear", element.0), json!({})).await;
        self.post(&format!("/element/{}/value", element.0), json!({"text": text})).await;
    }

    /// Clicks the element matching `css` and waits (up to 10 s) for the page the click leads
    /// to: a click returns before the navigation it starts, and reading the old page meanwhile
    /// gives stale elements or stale text.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.script("window.__ashgateOldPage = true; return true").await;
        self.post(&format!("/element/{}/click", element.0), json!({})).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .try_script("return window.__ashgateOldPage !== true && document.readyState === 'complete'")
                .await;
            if loaded == Some(Value::Bool(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} led to no new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css` when the click stays on the page (a copy button).
    pub async fn click_in_page(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/click", element.0), json!({})).await;
    }

    /// Chooses `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.click_in_page(&format!("{css} option[value=\"{value}\"]")).await;
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{}/text", element.0)).await.as_str().unwrap_or_default().to_owned()
    }

    /// The `value` property of the element matching `css`.
    pub async fn value(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{}/property/value", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs a script in the page and returns its result.
    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Runs a script, or `None` if the browser could not (e.g. while a page is unloading).
    async fn try_script(&self, script: &str) -> Option<Value> {
        let url = format!("{}/execute/sync", self.base);
        let response = self.http.post(url).json(&json!({"script": script, "args": []})).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Value>().await.ok().map(|v| v["value"].clone())
    }

    /// Every cookie of the current page, HttpOnly ones included, as (name, value).
    pub async fn cookies(&self) -> Vec<(String, String)> {
        let cookies = self.get("/cookie").await;
        cookies
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (c["name"].as_str().unwrap_or("").to_owned(), c["value"].as_str().unwrap_or("").to_owned())
            })
            .collect()
    }

    /// Resizes the window (the screenshot is of the viewport).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height})).await;
    }

    /// Saves a PNG of the viewport under `tests/artifacts/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.get("/screenshot").await;
        let png = STANDARD.decode(data.as_str().unwrap_or_default()).expect("base64 screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

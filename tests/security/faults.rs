//! Fault injection: a dependency goes down, hangs, and comes back, through a TCP proxy
//! (`ashgate_testkit::faults::TcpProxy`) in front of the real thing. Each time: a clear error,
//! no hang (every call below is bounded by `NO_HANG`), nothing accepted that should not be, no
//! acknowledged data lost, and recovery without restarting anything. Kills and restarts of
//! whole processes under load are in `tests/fleet`; an SMTP server that is down at the first
//! mail is in `tests/gateway/password_reset.rs`, an OpenID Provider down at start in
//! `tests/gateway/oauth2/failures.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_runtime::env::Env;
use ashgate_testkit::collector::CollectorFixture;
use ashgate_testkit::collector::deps::ashgate_collector::DatabaseUrl;
use ashgate_testkit::collector::deps::sqlx::{self, Connection as _, Executor as _};
use ashgate_testkit::faults::{Mode, TcpProxy};
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use ashgate_testkit::identity::{ADMIN_SECRET, INTERNAL_TOKEN, IdentityFixture, TEST_REDIS_ENV};
use ashgate_testkit::oidc::OidcProvider;
use ashgate_testkit::smtp::SmtpServer;
use tonic::Code;

use crate::support::{eventually, grpc_export, http_export, status_text};

/// Longest any single call may take while a dependency is down or hanging.
const NO_HANG: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(NO_HANG, call).await.unwrap_or_else(|_| panic!("{what} hung for {NO_HANG:?}"))
}

fn addr_of(url: &str) -> SocketAddr {
    let url = reqwest::Url::parse(url).unwrap();
    let host = url.host_str().unwrap();
    format!("{host}:{}", url.port_or_known_default().unwrap()).parse().unwrap()
}

/// identity-svc unreachable from the collector (down, then hanging): exports with a valid key
/// are refused retryably (UNAVAILABLE / 503 with Retry-After), never accepted, never stored;
/// once identity-svc answers again, the same collector accepts them.
#[tokio::test]
async fn collector_fails_closed_while_identity_is_unreachable() {
    let identity = IdentityFixture::start().await;
    let key = identity.system_key("faults").await;
    let proxy = TcpProxy::start(identity.addr).await.unwrap();
    let collector =
        CollectorFixture::start_authenticated(&format!("http://{}", proxy.addr()), INTERNAL_TOKEN, |_| {})
            .await;
    assert_eq!(grpc_export(collector.grpc_addr, &key, 1).await, Code::Ok);
    let stored = collector.span_count().await;

    for mode in [Mode::Down, Mode::Blackhole] {
        proxy.set(mode);
        // A verifier that lost its stream keeps answers at most a second.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        for credential in [key.as_str(), "not-a-key"] {
            let code = bounded("gRPC export", grpc_export(collector.grpc_addr, credential, 2)).await;
            assert_eq!(code, Code::Unavailable, "{mode:?}, {credential}");
            let response = bounded(
                "HTTP export",
                GatewayFixture::client()
                    .post(collector.traces_url())
                    .header("content-type", "application/x-protobuf")
                    .header("authorization", format!("Bearer {credential}"))
                    .body(crate::support::export_body(3, 2))
                    .send(),
            )
            .await
            .unwrap();
            assert_eq!(response.status(), 503, "{mode:?}, {credential}");
            assert!(response.headers().contains_key("retry-after"), "{mode:?}: 503 without Retry-After");
            assert!(!response.text().await.unwrap().is_empty(), "{mode:?}: 503 without a message");
        }
        assert_eq!(collector.span_count().await, stored, "{mode:?}: an unverified export was stored");
    }

    proxy.set(Mode::Forward);
    let back = eventually(Duration::from_secs(15), || async {
        grpc_export(collector.grpc_addr, &key, 4).await == Code::Ok
    })
    .await;
    assert!(back, "the collector did not recover once identity-svc answered again");
    assert_eq!(http_export(&collector.traces_url(), &key, 5).await.0, 200);
    assert_eq!(http_export(&collector.traces_url(), "not-a-key", 6).await, (401, "Invalid token".to_owned()));
    assert_eq!(collector.span_count().await, stored + 4);
}

/// A database of this test's own on the machine's PostgreSQL, reached through a proxy that
/// can cut it off (the server itself is shared and is never stopped).
struct ProxiedDatabase {
    server: String,
    name: String,
    proxy: TcpProxy,
}

impl ProxiedDatabase {
    async fn create() -> Self {
        let server = std::env::var(ashgate_testkit::collector::TEST_DATABASE_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("ashgate_sec_{:016x}", rand_u64());
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        conn.close().await.unwrap();
        let proxy = TcpProxy::start(addr_of(&server)).await.unwrap();
        Self { server, name, proxy }
    }

    fn url(&self) -> String {
        let mut url = reqwest::Url::parse(&self.server).unwrap();
        url.set_port(Some(self.proxy.addr().port())).unwrap();
        url.set_path(&format!("/{}", self.name));
        url.to_string()
    }

    async fn drop_database(self) {
        let mut conn = sqlx::PgConnection::connect(&self.server).await.unwrap();
        let _ = conn
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .await;
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    hasher.finish()
}

/// PostgreSQL cut off mid-traffic and back: sign-ins and exports fail with clear, retryable
/// errors while it is gone (never OK for an export that was not committed), and both work
/// again without a restart; every acknowledged span is stored.
#[tokio::test]
async fn postgres_cut_off_and_back() {
    let database = ProxiedDatabase::create().await;
    let url = database.url();
    let identity =
        IdentityFixture::start_with(|env: Env| env.with("PHOENIX_SQL_DATABASE_URL", url.clone())).await;
    let key = identity.system_key("pg").await;
    let collector = CollectorFixture::start_authenticated(&identity.url(), INTERNAL_TOKEN, |config| {
        config.database = DatabaseUrl::parse(&url).unwrap();
    })
    .await;
    let admin = identity.admin_token().await;
    // Every export below is `http_export`: one trace of this many spans (ids distinct per trace,
    // the same on a resend: the store keeps one row per (trace, span)).
    const SPANS_PER_EXPORT: i64 = 2;
    assert_eq!(http_export(&collector.traces_url(), &key, 1).await.0, 200);
    let mut acknowledged = SPANS_PER_EXPORT;
    // Traces answered only with an error that does not say whether the spans were committed
    // (503: the batch may have failed after its commit reached PostgreSQL); each may add up
    // to SPANS_PER_EXPORT rows, and nothing else may.
    let mut uncertain = 0;

    // Cut while exports are in flight: each is answered, OK only if committed.
    let exports = (0..8u64).map(|i| {
        let (url, key) = (collector.traces_url(), key.clone());
        tokio::spawn(async move { http_export(&url, &key, 100 + i).await.0 })
    });
    let exports: Vec<_> = exports.collect();
    database.proxy.set(Mode::Down);
    for export in exports {
        let status = bounded("export during the cut", export).await.unwrap();
        assert!(matches!(status, 200 | 503), "export answered {status}");
        if status == 200 {
            acknowledged += SPANS_PER_EXPORT;
        } else {
            uncertain += 1;
        }
    }
    for mode in [Mode::Down, Mode::Blackhole] {
        database.proxy.set(mode);
        let (status, message) =
            bounded("export while the database is gone", http_export(&collector.traces_url(), &key, 200))
                .await;
        assert_eq!(status, 503, "{mode:?}: {message}");
        assert!(!message.is_empty());
        if mode == Mode::Down {
            // Trace 200, sent once per mode: both answers count as one trace that may be stored.
            uncertain += 1;
        }
        let login = bounded(
            "sign-in while the database is gone",
            identity.auth().login(pb::LoginRequest { email: "admin@localhost".into(), password: "x".into() }),
        )
        .await
        .unwrap_err();
        assert_eq!(login.code(), Code::Unavailable, "{mode:?}: {login:?}");
        assert!(!login.message().is_empty());
    }

    database.proxy.set(Mode::Forward);
    let back = eventually(Duration::from_secs(20), || async {
        http_export(&collector.traces_url(), &key, 300).await.0 == 200
    })
    .await;
    assert!(back, "exports did not recover");
    // Trace 300 was resent until acknowledged: its earlier 503s add nothing beyond these.
    acknowledged += SPANS_PER_EXPORT;
    let request = ashgate_testkit::identity::bearer(pb::ListUsersRequest::default(), &admin);
    let users = eventually(Duration::from_secs(10), || {
        let request = ashgate_testkit::identity::bearer(request.get_ref().clone(), &admin);
        let mut users = identity.users();
        async move { users.list_users(request).await.is_ok() }
    })
    .await;
    assert!(users, "identity-svc did not recover");
    // Retried exports never duplicate spans; every acknowledged one is stored.
    let span_count = collector.span_count().await;
    assert!(span_count >= acknowledged);
    assert!(
        span_count <= acknowledged + SPANS_PER_EXPORT * uncertain,
        "{span_count} spans stored, more than the {acknowledged} acknowledged plus \
         {SPANS_PER_EXPORT} for each of the {uncertain} traces answered 503: spans were duplicated"
    );
    drop(collector);
    drop(identity);
    database.drop_database().await;
}

/// Redis hanging, gone, and back: sign-in goes on (limits fall back to this replica's memory
/// and still lock a brute-forcer out), and nothing waits on Redis for long.
#[tokio::test]
async fn redis_gone_and_back() {
    let redis = std::env::var(TEST_REDIS_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let proxy = TcpProxy::start(addr_of(&redis)).await.unwrap();
    let proxied = format!("redis://{}", proxy.addr());
    let identity = IdentityFixture::start_with(|env: Env| {
        env.with("ASHGATE_REDIS_URL", proxied.clone())
            .with("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", "2")
    })
    .await;
    identity.user_with_role("redisless", pb::Role::Member).await;
    let login = |password: &'static str| {
        let mut auth = identity.auth();
        async move {
            auth.login(pb::LoginRequest { email: "redisless@example.com".into(), password: password.into() })
                .await
                .map(|_| ())
                .map_err(|s| (s.code(), s.message().to_owned()))
        }
    };
    for mode in [Mode::Blackhole, Mode::Down] {
        proxy.set(mode);
        assert!(bounded("sign-in without Redis", login("user-password-1")).await.is_ok(), "{mode:?}");
    }
    // Still protected: the in-memory fallback locks after two failures.
    for _ in 0..2 {
        assert_eq!(bounded("failed sign-in", login("guess")).await.unwrap_err().0, Code::Unauthenticated);
    }
    assert_eq!(
        bounded("locked sign-in", login("user-password-1")).await.unwrap_err().0,
        Code::ResourceExhausted
    );

    proxy.set(Mode::Forward);
    let fresh = eventually(Duration::from_secs(10), || async {
        let mut auth = identity.auth();
        auth.login(pb::LoginRequest {
            email: "admin@localhost".into(),
            password: ashgate_testkit::identity::ADMIN_PASSWORD.into(),
        })
        .await
        .is_ok()
    })
    .await;
    assert!(fresh, "sign-in did not work once Redis was back");
}

/// The SMTP server down, then hanging, then back: the reset request answers 204 at once each
/// time (mail goes out in the background, failures are counted), and once the server is back
/// the next request's mail arrives, without a restart. A reset request whose address has a
/// `Bcc:` header smuggled into it (CR/LF) still answers 204, and every message the server
/// received went to the real user's address only, with no smuggled header anywhere. Such an
/// address cannot belong to a user in the first place: creating one is refused with 422.
#[tokio::test]
async fn smtp_down_hanging_and_back() {
    let smtp = SmtpServer::start().await;
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], smtp.port))).await.unwrap();
    // Several mails to one account here: no per-account spacing.
    let fixture = GatewayFixture::start_with_smtp(
        smtp.env_with_port(proxy.addr().port()),
        &[("ASHGATE_PASSWORD_RESET_COOLDOWN_SECONDS", "0")],
    )
    .await;
    fixture.identity.user_with_role("mailee", pb::Role::Member).await;
    let request = |email: &'static str| {
        let fixture = &fixture;
        async move {
            let response = GatewayFixture::client()
                .post(fixture.url("/auth/password-reset-email"))
                .header("referer", fixture.url("/forgot-password"))
                .json(&serde_json::json!({ "email": email }))
                .send()
                .await
                .unwrap();
            status_text(response).await
        }
    };
    let stats = fixture.identity.identity.mail_stats().expect("SMTP configured");
    proxy.set(Mode::Down);
    assert_eq!(bounded("reset request, SMTP down", request("mailee@example.com")).await.0, 204);
    assert!(
        eventually(Duration::from_secs(20), || async { stats.failed() >= 1 }).await,
        "the failure was not counted"
    );
    proxy.set(Mode::Blackhole);
    assert_eq!(bounded("reset request, SMTP hanging", request("mailee@example.com")).await.0, 204);
    assert!(smtp.messages().is_empty());

    proxy.set(Mode::Forward);
    assert_eq!(request("mailee\r\nBcc: mallory@evil.test").await.0, 204);
    assert_eq!(request("mailee@example.com\r\nBcc: mallory@evil.test").await.0, 204);
    assert_eq!(request("mailee@example.com").await.0, 204);
    let mails = smtp.wait_for(1).await;
    assert!(mails[0].reset_link().is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    for mail in smtp.messages() {
        assert!(!format!("{mail:?}").contains("mallory"), "a smuggled header reached the mail: {mail:?}");
        assert_eq!(mail.rcpt_tos, ["mailee@example.com"], "a mail went to someone else: {mail:?}");
    }

    // No user can own an address with CR/LF in it: the admin's create is refused.
    let response = GatewayFixture::client()
        .post(fixture.url("/v1/users"))
        .bearer_auth(ADMIN_SECRET)
        .json(&serde_json::json!({"user": {
            "email": "mallory@example.com\r\nBcc: mallory@evil.test",
            "username": "mallory",
            "role": "MEMBER",
            "auth_method": "LOCAL",
            "password": "mallory-pass-1",
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(response).await, (422, "Invalid email address".to_owned()));
}

/// An OpenID Provider that hangs while the gateway starts and while someone signs in: the
/// gateway starts anyway, the button answers with a readable error instead of hanging, and
/// sign-in works once the provider answers, without a restart.
#[tokio::test]
async fn oidc_provider_hanging_then_back() {
    let op = OidcProvider::start().await;
    let discovery = op.discovery_url();
    let proxy = TcpProxy::start(addr_of(&discovery)).await.unwrap();
    proxy.set(Mode::Blackhole);
    let mut proxied = reqwest::Url::parse(&discovery).unwrap();
    proxied.set_port(Some(proxy.addr().port())).unwrap();
    let proxied = proxied.to_string();
    let fixture = bounded(
        "gateway start with a hanging provider",
        GatewayFixture::start_with(true, |env| {
            env.with("PHOENIX_OAUTH2_SLOW_CLIENT_ID", "slow-client")
                .with("PHOENIX_OAUTH2_SLOW_CLIENT_SECRET", "slow-secret-0123456789")
                .with("PHOENIX_OAUTH2_SLOW_OIDC_CONFIG_URL", proxied.as_str())
                .with("PHOENIX_DISABLE_RATE_LIMIT", "true")
        }),
    )
    .await;
    let start = || async {
        let response = GatewayFixture::client().get(fixture.url("/oauth2/slow/login")).send().await.unwrap();
        let location =
            response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (response.status().as_u16(), location)
    };
    let (status, location) = bounded("sign-in start, provider hanging", start()).await;
    assert_eq!((status, location.as_str()), (307, "/login?error=provider_unavailable"));

    proxy.set(Mode::Forward);
    let ok = eventually(Duration::from_secs(20), || async { start().await.0 == 302 }).await;
    assert!(ok, "sign-in did not start once the provider answered");
    let (_, location) = start().await;
    assert!(location.contains("client_id=slow-client"), "{location}");
}

//! collector-svc fixtures: an in-process collector on port 0 with a fresh database, a collector
//! in a child OS process (to kill it), and the crates collector tests use, re-exported so the
//! root package's test and bench targets need no dev-dependencies of their own.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use ashgate_collector::auth::{CredentialVerifier, VerifierConfig};
use ashgate_collector::store::Store;
use ashgate_collector::{Collector, CollectorConfig, DatabaseUrl};
use ashgate_runtime::env::Env;
use rand::Rng as _;
use sqlx::{Connection as _, Executor as _};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Crates collector tests and the ingest benchmark use.
pub mod deps {
    pub use ashgate_collector;
    pub use ashgate_identity_client;
    pub use bytes;
    pub use flate2;
    pub use opentelemetry;
    pub use opentelemetry_http;
    pub use opentelemetry_otlp;
    pub use opentelemetry_proto;
    pub use opentelemetry_sdk;
    pub use prost;
    pub use reqwest;
    pub use serde_json;
    pub use sqlx;
    pub use tonic_health;
    pub use tonic_prost;
    pub use tonic_types;
}

/// Environment variable naming a PostgreSQL server for tests; unset means SQLite.
pub const TEST_DATABASE_ENV: &str = "ASHGATE_TEST_DATABASE_URL";

/// A database that exists for one test: a SQLite file in a temporary directory, or (when
/// `ASHGATE_TEST_DATABASE_URL` is set) `ashgate_t_<random>` on that PostgreSQL server, dropped
/// when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Where the collector stores spans.
    pub url: DatabaseUrl,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new, empty database.
    pub async fn fresh() -> anyhow::Result<Self> {
        match std::env::var(TEST_DATABASE_ENV).ok().filter(|v| !v.trim().is_empty()) {
            None => {
                let dir = tempfile::tempdir()?;
                let url = DatabaseUrl::sqlite_file(dir.path().join("spans.db"));
                Ok(Self { url, postgres: None, _dir: Some(dir) })
            }
            Some(server) => {
                let name = format!("ashgate_t_{:016x}", rand::rng().random::<u64>());
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .context("connect to ASHGATE_TEST_DATABASE_URL")?;
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
                conn.close().await?;
                let mut url = url::Url::parse(&server)?;
                url.set_path(&format!("/{name}"));
                let url = DatabaseUrl::parse(url.as_str()).context("not a postgres URL")?;
                Ok(Self { url, postgres: Some((server, name)), _dir: None })
            }
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else { return };
        // Drop may run inside a runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A TCP port that was free a moment ago (for child processes, whose configuration cannot say 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

/// How a test collector reaches a test identity-svc.
pub fn verifier_config(identity_url: &str, internal_token: &str) -> VerifierConfig {
    VerifierConfig {
        identity_urls: vec![identity_url.to_owned()],
        internal_token: Some(internal_token.to_owned()),
        max_cache_ttl: Duration::from_secs(60),
        negative_cache_ttl: Duration::from_secs(2),
        cache_capacity: 10_000,
        tls: Default::default(),
    }
}

/// A collector configuration for tests: loopback, ports 0, auth off, this database.
pub fn test_config(database: &TestDatabase) -> CollectorConfig {
    let env = Env::from_pairs([("HOME", "/nonexistent")]);
    let mut config = CollectorConfig::from_env(&env).unwrap_or_else(|e| panic!("default config: {e}"));
    config.grpc_port = 0;
    config.http_port = 0;
    config.database = database.url.clone();
    config
}

/// A collector serving in this process.
pub struct CollectorFixture {
    /// OTLP/gRPC, queries, health.
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP, metrics.
    pub http_addr: SocketAddr,
    /// Its span store, for counting rows.
    pub store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ashgate_collector::Error>>>,
    /// Kept alive as long as the collector.
    pub database: TestDatabase,
}

impl CollectorFixture {
    /// Auth disabled, default limits.
    pub async fn start() -> Self {
        Self::start_with(CredentialVerifier::disabled(), |_| {}).await
    }

    /// With `verifier` and the configuration adjusted by `configure`.
    pub async fn start_with(
        verifier: CredentialVerifier,
        configure: impl FnOnce(&mut CollectorConfig),
    ) -> Self {
        let database = TestDatabase::fresh().await.unwrap_or_else(|e| panic!("test database: {e:#}"));
        let mut config = test_config(&database);
        configure(&mut config);
        let collector = Collector::bind(config, verifier).await.unwrap_or_else(|e| panic!("collector: {e}"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let grpc_addr = collector.grpc_addr();
        let http_addr = collector.http_addr();
        let store = collector.store();
        let task = tokio::spawn(collector.run(async move {
            let _ = stop.await;
        }));
        Self { grpc_addr, http_addr, store, shutdown: Some(shutdown), task: Some(task), database }
    }

    /// Auth enabled, verifying credentials with the identity-svc at `identity_url` (which must
    /// accept `internal_token`), configuration adjusted by `configure`.
    pub async fn start_authenticated(
        identity_url: &str,
        internal_token: &str,
        configure: impl FnOnce(&mut CollectorConfig),
    ) -> Self {
        let verifier = CredentialVerifier::connect(verifier_config(identity_url, internal_token))
            .unwrap_or_else(|e| panic!("verifier: {e}"));
        Self::start_with(verifier, |config| {
            config.auth_enabled = true;
            configure(config);
        })
        .await
    }

    /// `http://<grpc addr>`, for tonic clients and the OTLP gRPC exporter.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://<http addr>/v1/traces`.
    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.http_addr)
    }

    /// `http://<http addr><path>`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// Rows in the spans table.
    pub async fn span_count(&self) -> i64 {
        self.store.count_spans().await.unwrap_or_else(|e| panic!("count spans: {e}"))
    }

    /// Graceful shutdown (the database stays until the fixture is dropped); returns what `run`
    /// returned.
    pub async fn stop(&mut self) -> Result<(), ashgate_collector::Error> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| panic!("collector task: {e}")),
            None => Ok(()),
        }
    }
}

impl Drop for CollectorFixture {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A collector running in a child OS process (so it can be SIGKILLed and its memory measured).
pub struct CollectorProcess {
    child: Child,
    /// OTLP/gRPC address.
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP address.
    pub http_addr: SocketAddr,
}

impl CollectorProcess {
    /// Runs `program args` with `env` added to a clean environment (only PATH and HOME are kept);
    /// the program must call `ashgate_collector::run_process`, which prints the listening line.
    pub fn spawn(program: &Path, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut command = Command::new(program);
        command.args(args).env_clear().stdout(Stdio::piped()).stderr(Stdio::inherit());
        for keep in ["PATH", "HOME", "RUST_LOG", "MALLOC_ARENA_MAX"] {
            if let Ok(value) = std::env::var(keep) {
                command.env(keep, value);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().with_context(|| format!("spawn {}", program.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("collector-svc listening ") {
                    let _ = tx.send(rest.to_owned());
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                bail!("collector child did not report its addresses");
            }
        };
        let addr = |key: &str| -> anyhow::Result<SocketAddr> {
            let value = line
                .split_whitespace()
                .find_map(|part| part.strip_prefix(key))
                .with_context(|| format!("no {key} in {line:?}"))?;
            Ok(value.parse()?)
        };
        Ok(Self { grpc_addr: addr("grpc=")?, http_addr: addr("http=")?, child })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (graceful shutdown), then wait for the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        Ok(self.child.wait()?)
    }

    /// Resident memory now and at its peak, in KiB (`VmRSS`, `VmHWM` of /proc/<pid>/status).
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        crate::faults::memory_kib(self.child.id())
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

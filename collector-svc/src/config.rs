//! `CollectorConfig`: every setting of collector-svc, read once from the environment.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ashgate_runtime::env::{ConfigError, Env};
use tokio::sync::watch;

use crate::auth::VerifierConfig;

/// Default OTLP message size limit (compressed and decompressed), as in the OTLP collector.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 4 * 1024 * 1024;
/// Default queue capacity, in spans.
pub const DEFAULT_QUEUE_SPANS: u64 = 16_384;

/// Everything collector-svc needs to start, validated. `Debug` prints no secret: the database
/// URL and the verifier's internal token hide themselves.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// `PHOENIX_ENABLE_AUTH`: authenticate every export and query.
    pub auth_enabled: bool,
    /// `PHOENIX_HOST`: the address both listeners bind.
    pub host: IpAddr,
    /// `PHOENIX_GRPC_PORT`: OTLP/gRPC, span queries and health (0 = any free port).
    pub grpc_port: u16,
    /// `ASHGATE_OTLP_HTTP_PORT`: OTLP/HTTP, `/metrics`, `/healthz`, `/readyz` (0 = any free port).
    pub http_port: u16,
    /// Where spans are stored (SQLite or PostgreSQL).
    pub database: DatabaseUrl,
    /// `ASHGATE_OTLP_MAX_MESSAGE_BYTES`: limit on a request body, before and after decompression.
    pub max_message_bytes: usize,
    /// `ASHGATE_OTLP_QUEUE_SPANS`: spans accepted but not yet committed, at most.
    pub queue_capacity_spans: u32,
    /// `ASHGATE_OTLP_BATCH_SPANS`: spans written per transaction, at most.
    pub max_batch_spans: usize,
    /// `ASHGATE_OTLP_MAX_CONCURRENT_DECODES`: request bodies read and decoded at once, at most.
    pub max_concurrent_decodes: usize,
    /// `ASHGATE_OTLP_QUEUE_WAIT_MS`: how long an export may wait for a decode slot or for queue
    /// room before it is answered "retry later" (0 = never wait).
    pub queue_wait: Duration,
    /// `ASHGATE_OTLP_RETRY_AFTER_SECONDS`: the `Retry-After` sent when the queue is full.
    pub retry_after_secs: u32,
    /// `ASHGATE_OTLP_BODY_TIMEOUT_SECONDS` (30): longest an export's body may take to arrive,
    /// over gRPC or HTTP, before it is refused (a trickling client must not hold a decode slot).
    pub body_timeout: Duration,
    /// `ASHGATE_OTLP_MAX_CONNECTIONS` (1024): OTLP/gRPC connections open at once; more are closed
    /// as soon as they are accepted.
    pub max_connections: usize,
    /// `ASHGATE_IDENTITY_URL`, `ASHGATE_INTERNAL_TOKEN`, `ASHGATE_VERIFY_CACHE_SECONDS`: how
    /// credentials are verified with identity-svc (used when `auth_enabled`).
    pub identity: VerifierConfig,
    /// Test knob: while held, the writer commits nothing (never set from the environment).
    pub writer_hold: Option<WriterHold>,
}

impl CollectorConfig {
    /// Reads and validates every variable; the error names the first bad one.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let host = match env.string("PHOENIX_HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) if h.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h.parse().map_err(|_| ConfigError::new("PHOENIX_HOST", "must be an IP address"))?,
        };
        let identity_url =
            env.string("ASHGATE_IDENTITY_URL").unwrap_or_else(|| "http://127.0.0.1:50051".into());
        if !(identity_url.starts_with("http://") || identity_url.starts_with("https://")) {
            return Err(ConfigError::new("ASHGATE_IDENTITY_URL", "must be an http:// or https:// URL"));
        }
        let max_message_bytes =
            env.u64_in("ASHGATE_OTLP_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, 1024, 256 * 1024 * 1024)?;
        Ok(Self {
            auth_enabled: env.bool("PHOENIX_ENABLE_AUTH", false)?,
            host,
            grpc_port: env.port("PHOENIX_GRPC_PORT", 4317)?,
            http_port: env.port("ASHGATE_OTLP_HTTP_PORT", 4318)?,
            database: DatabaseUrl::from_env(env)?,
            max_message_bytes: usize::try_from(max_message_bytes).map_err(|_| {
                ConfigError::new("ASHGATE_OTLP_MAX_MESSAGE_BYTES", "too large for this machine")
            })?,
            queue_capacity_spans: u32::try_from(env.u64_in(
                "ASHGATE_OTLP_QUEUE_SPANS",
                DEFAULT_QUEUE_SPANS,
                1,
                10_000_000,
            )?)
            .unwrap_or(u32::MAX),
            max_batch_spans: usize::try_from(env.u64_in("ASHGATE_OTLP_BATCH_SPANS", 8192, 1, 1_000_000)?)
                .unwrap_or(8192),
            max_concurrent_decodes: usize::try_from(env.u64_in(
                "ASHGATE_OTLP_MAX_CONCURRENT_DECODES",
                4,
                1,
                4096,
            )?)
            .unwrap_or(4),
            queue_wait: Duration::from_millis(env.u64_in("ASHGATE_OTLP_QUEUE_WAIT_MS", 2_000, 0, 60_000)?),
            retry_after_secs: u32::try_from(env.u64_in("ASHGATE_OTLP_RETRY_AFTER_SECONDS", 1, 1, 3600)?)
                .unwrap_or(1),
            body_timeout: Duration::from_secs(env.u64_in(
                "ASHGATE_OTLP_BODY_TIMEOUT_SECONDS",
                30,
                1,
                3600,
            )?),
            max_connections: usize::try_from(env.u64_in("ASHGATE_OTLP_MAX_CONNECTIONS", 1024, 1, 1 << 20)?)
                .unwrap_or(1024),
            identity: VerifierConfig::from_env(env)?,
            writer_hold: None,
        })
    }
}

/// A database URL; `Debug` hides any password in it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// `ASHGATE_SPANS_DATABASE_URL`, else a PostgreSQL `PHOENIX_SQL_DATABASE_URL`, else SQLite
    /// `ashgate-spans.db` under `PHOENIX_WORKING_DIR` (default `~/.phoenix`). A SQLite
    /// `PHOENIX_SQL_DATABASE_URL` is not shared: span writes would contend with identity's.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        if let Some(url) = env.string("ASHGATE_SPANS_DATABASE_URL") {
            return Self::parse(&url).ok_or_else(|| {
                ConfigError::new("ASHGATE_SPANS_DATABASE_URL", "must be a postgresql:// or sqlite: URL")
            });
        }
        if let Some(url) = env.string("PHOENIX_SQL_DATABASE_URL") {
            match Self::parse(&url) {
                Some(db) if db.is_postgres() => return Ok(db),
                Some(_) => {}
                None => {
                    return Err(ConfigError::new(
                        "PHOENIX_SQL_DATABASE_URL",
                        "must be a postgresql:// or sqlite: URL",
                    ));
                }
            }
        }
        let dir = match env.string("PHOENIX_WORKING_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => match env.string("HOME") {
                Some(home) => PathBuf::from(home).join(".phoenix"),
                None => return Err(ConfigError::new("PHOENIX_WORKING_DIR", "must be set when HOME is not")),
            },
        };
        Ok(Self::sqlite_file(dir.join("ashgate-spans.db")))
    }

    /// A SQLite database in this file (created on first use, with its directory).
    pub fn sqlite_file(path: PathBuf) -> Self {
        Self(format!("sqlite://{}?mode=rwc", path.display()))
    }

    /// Accepts `postgres://`, `postgresql://` (also SQLAlchemy's `postgresql+driver://`) and
    /// `sqlite:` URLs.
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once(':')?;
        let scheme = scheme.split('+').next().unwrap_or(scheme).to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Self(format!("postgres:{rest}"))),
            "sqlite" => Some(Self(url.to_owned())),
            _ => None,
        }
    }

    /// Whether this is a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres:")
    }

    /// The URL, for connecting. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // postgres://user:password@host/db: keep the scheme and what follows '@'.
        match self.0.rsplit_once('@') {
            Some((_, host)) => write!(f, "DatabaseUrl(postgres://***@{host})"),
            None => write!(f, "DatabaseUrl({})", self.0),
        }
    }
}

/// Test knob that stops the writer from committing while held, to fill the queue on purpose.
#[derive(Clone, Debug)]
pub struct WriterHold(Arc<watch::Sender<bool>>);

impl WriterHold {
    /// A hold that is already holding.
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(true)))
    }

    /// Lets the writer go on.
    pub fn release(&self) {
        self.0.send_replace(false);
    }

    /// Holds the writer again before its next commit.
    pub fn hold(&self) {
        self.0.send_replace(true);
    }

    /// Waits until the hold is released.
    pub(crate) async fn wait_released(&self) {
        let mut rx = self.0.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|held| !held).await;
    }
}

impl Default for WriterHold {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let env = Env::from_pairs([("HOME", "/home/x")]);
        let config = CollectorConfig::from_env(&env).unwrap();
        assert!(!config.auth_enabled);
        assert_eq!(config.grpc_port, 4317);
        assert_eq!(config.http_port, 4318);
        assert_eq!(config.max_message_bytes, 4 * 1024 * 1024);
        assert_eq!(config.max_connections, 1024);
        assert_eq!(config.database.expose(), "sqlite:///home/x/.phoenix/ashgate-spans.db?mode=rwc");

        let env = Env::from_pairs([
            ("PHOENIX_SQL_DATABASE_URL", "postgresql://u:pw@db:5432/phoenix"),
            ("ASHGATE_INTERNAL_TOKEN", "tok-secret"),
        ]);
        let config = CollectorConfig::from_env(&env).unwrap();
        assert_eq!(config.database.expose(), "postgres://u:pw@db:5432/phoenix");
        let debug = format!("{config:?}");
        assert!(!debug.contains("pw") && !debug.contains("tok-secret"), "{debug}");

        let bad =
            |k: &str, v: &str| CollectorConfig::from_env(&Env::from_pairs([(k, v)])).unwrap_err().to_string();
        assert_eq!(bad("PHOENIX_HOST", "nowhere"), "PHOENIX_HOST: must be an IP address");
        let capped = Env::from_pairs([("HOME", "/home/x"), ("ASHGATE_OTLP_MAX_CONNECTIONS", "0")]);
        assert_eq!(
            CollectorConfig::from_env(&capped).unwrap_err().to_string(),
            "ASHGATE_OTLP_MAX_CONNECTIONS: must be between 1 and 1048576"
        );
        assert_eq!(
            bad("ASHGATE_SPANS_DATABASE_URL", "mysql://x"),
            "ASHGATE_SPANS_DATABASE_URL: must be a postgresql:// or sqlite: URL"
        );
        assert_eq!(bad("PHOENIX_ENABLE_AUTH", "yes"), "PHOENIX_ENABLE_AUTH: must be true or false");
        assert_eq!(
            bad("ASHGATE_IDENTITY_URL", "grpc://x"),
            "ASHGATE_IDENTITY_URL: must be an http:// or https:// URL"
        );
        assert_eq!(
            bad("ASHGATE_OTLP_MAX_MESSAGE_BYTES", "12"),
            "ASHGATE_OTLP_MAX_MESSAGE_BYTES: must be between 1024 and 268435456"
        );
    }
}

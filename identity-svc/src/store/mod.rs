//! Storage: one sqlx `AnyPool` over SQLite (embedded default) or PostgreSQL, with migrations
//! per backend. Ids are BIGINT, times Unix ms, booleans 0/1 (what `Any` binds on both).

mod api_keys;
mod audit;
mod ldap_users;
mod revocations;
mod secret_ids;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use api_keys::ApiKeyRow;
pub use sessions::{AccessRow, RefreshRow, Renewal, ResetRow};

use crate::error::{Error, Result};

impl From<sqlx::Error> for Error {
    /// A lost connection or an exhausted pool is worth retrying; anything else is a bug.
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable("Database unavailable".into())
            }
            _ => Self::Internal(err.to_string()),
        }
    }
}

/// Which database the pool talks to; some SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// For several replicas.
    Postgres,
}

/// The identity tables.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let options =
            AnyConnectOptions::from_str(url).map_err(|e| Error::Unavailable(format!("database URL: {e}")))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL survives process crashes.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot connect to the database: {e}")))?;
        let mut migrator: Migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        // collector-svc keeps its own migrations (versions >= 20000) in the same database.
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::Unavailable(format!("database migration failed: {e}")))?;
        Ok(Self { pool, backend })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection (shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a unique-constraint failure to a conflict with Phoenix's message for the column.
fn conflict_or(err: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
        if text.contains("skeleton") {
            return Error::Conflict(crate::user::USERNAME_TOO_SIMILAR);
        }
        if text.contains("username") {
            return Error::Conflict("Username already exists");
        }
        if text.contains("email") {
            return Error::Conflict("Email already exists");
        }
        if text.contains("oauth2") {
            return Error::Conflict("OAuth2 identity already linked to another user");
        }
        if text.contains("ldap_unique_id") {
            return Error::Conflict("LDAP identity already linked to another user");
        }
    }
    err.into()
}

/// Reads an `i64` 0/1 column as a bool.
fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}

#[cfg(test)]
mod migration_tests;

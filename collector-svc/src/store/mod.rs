//! The span store: SQLite or PostgreSQL behind one sqlx `AnyPool`, chosen by URL scheme.

mod insert;
mod read;
mod sql;
mod traces;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Executor as _};

pub use insert::ResolvedBatch;
pub use read::{
    AttributeMatch, AttributeValue, ParentFilter, ProjectFilter, ProjectPage, ProjectRef, ProjectStats,
    SpanFilter, SpanPage, StoredProject, StoredSpan,
};
pub use traces::{StoredTrace, TraceFilter, TracePage, TraceSort, TraceSpanRow};

use crate::config::DatabaseUrl;
use crate::error::Error;

/// Project ids kept in memory; beyond this the least used are looked up again.
const PROJECT_ID_CACHE_ENTRIES: u64 = 10_000;

/// Projects created per statement (two binds each, well under both backends' bind limits).
const PROJECTS_PER_STATEMENT: usize = 200;

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (WAL, synchronous=NORMAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Durable span storage, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Project name → id; projects are never renamed or deleted here, so entries stay valid.
    /// Bounded: names come from exports, and a client may send any number of them.
    project_ids: moka::sync::Cache<String, i64>,
    insert: Arc<insert::InsertStatements>,
}

/// Logs a storage failure (without the URL) and hides it behind `Error::Unavailable`.
pub(crate) fn unavailable(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |error| {
        tracing::error!(%error, context, "span store error");
        Error::Unavailable
    }
}

impl Store {
    /// Connects, applies the collector's migrations (versions ≥ 20000; other services' versions
    /// in the shared `_sqlx_migrations` table are ignored) and tunes SQLite for durability.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.is_postgres() { Backend::Postgres } else { Backend::Sqlite };
        if backend == Backend::Sqlite {
            create_sqlite_dir(url.expose())?;
        }
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let options = match backend {
            // One connection writes; the others read (WAL lets readers run beside the writer).
            Backend::Sqlite => options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL + NORMAL: a commit survives a process kill (it is in the WAL, handed to
                    // the OS); a power loss may lose the last commits before a checkpoint.
                    // Checkpoints run beside the writer (see `checkpoint`), not inside its commits.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(8),
        };
        let pool = options
            .connect(url.expose())
            .await
            .map_err(|e| Error::Startup(format!("cannot open the span database: {e}")))?;
        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::Startup(format!("cannot migrate the span database: {e}")))?;
        Ok(Self {
            pool,
            backend,
            project_ids: moka::sync::Cache::new(PROJECT_ID_CACHE_ENTRIES),
            insert: Arc::new(insert::InsertStatements::new(backend)),
        })
    }

    /// The dialect in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Ids of these projects (distinct names), creating the missing ones in committed
    /// statements of their own, so the id cache never holds an id that a rolled-back transaction
    /// made. Names the cache lacks cost two statements per [`PROJECTS_PER_STATEMENT`], not two
    /// per name: an export that names thousands of projects cannot hold the writer for long.
    pub async fn project_ids(&self, names: &[&str]) -> Result<Vec<i64>, Error> {
        let missing: Vec<&str> =
            names.iter().copied().filter(|name| !self.project_ids.contains_key(*name)).collect();
        for chunk in missing.chunks(PROJECTS_PER_STATEMENT) {
            for (name, id) in self.ensure_projects(chunk).await? {
                self.project_ids.insert(name, id);
            }
        }
        names
            .iter()
            .map(|name| {
                self.project_ids.get(*name).ok_or_else(|| {
                    tracing::error!("a project just created was not found");
                    Error::Unavailable
                })
            })
            .collect()
    }

    /// Creates the projects that do not exist and returns every name's id.
    async fn ensure_projects(&self, names: &[&str]) -> Result<Vec<(String, i64)>, Error> {
        let placeholder = |i: usize| match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${i}"),
        };
        let rows: Vec<String> = (0..names.len())
            .map(|i| format!("({}, '', {})", placeholder(2 * i + 1), placeholder(2 * i + 2)))
            .collect();
        let sql = format!(
            "INSERT INTO projects (name, description, created_at) VALUES {} ON CONFLICT (name) DO NOTHING",
            rows.join(", ")
        );
        let now = now_unix_nano();
        // Only placeholders are formatted into the text; names are bound.
        let mut insert = sqlx::query(AssertSqlSafe(sql));
        for name in names {
            insert = insert.bind(*name).bind(now);
        }
        insert.execute(&self.pool).await.map_err(unavailable("create projects"))?;
        let list: Vec<String> = (1..=names.len()).map(placeholder).collect();
        let sql = format!("SELECT name, id FROM projects WHERE name IN ({})", list.join(", "));
        let mut select = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql));
        for name in names {
            select = select.bind(*name);
        }
        select.fetch_all(&self.pool).await.map_err(unavailable("find projects"))
    }

    /// SQLite only: copies committed WAL frames into the database file without blocking the
    /// writer (PASSIVE). Automatic checkpoints are off because they run inside the commit that
    /// crosses the threshold, stalling that export for the whole copy; the server calls this on a
    /// short timer instead, which also keeps the WAL file small.
    pub async fn checkpoint(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Now, in Unix nanoseconds.
pub(crate) fn now_unix_nano() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// SQLite creates the file but not its directory.
fn create_sqlite_dir(url: &str) -> Result<(), Error> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Startup(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(())
}

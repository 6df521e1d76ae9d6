//! The fleet's PostgreSQL and Redis: the machine's server software, run as private instances
//! (own data directory, own loopback port) so a test can crash and restart them without
//! disturbing the servers the rest of the suite shares.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::Connection as _;

use super::{signal, tail, wait_timeout};
use crate::collector::free_port;

/// Variable naming the directory of PostgreSQL's server binaries (`initdb`, `postgres`);
/// default: the newest `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`.
pub const PG_BIN_ENV: &str = "ASHGATE_FLEET_PG_BIN";

/// The user PostgreSQL runs as: itself, unless this process is root (PostgreSQL refuses to run
/// as root), then the `postgres` account's (uid, gid).
fn postgres_account() -> anyhow::Result<Option<(u32, u32)>> {
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let fields = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .context("running as root, and there is no `postgres` user to run PostgreSQL as")?;
    let id = |i: usize| -> anyhow::Result<u32> { Ok(fields.get(i).context("bad /etc/passwd")?.parse()?) };
    Ok(Some((id(2)?, id(3)?)))
}

fn postgres_bin() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var(PG_BIN_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().context("no PostgreSQL server binaries")?;
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// A PostgreSQL server of this test's own: a fresh cluster in a temporary directory, listening on
/// a free loopback port (and a Unix socket in that directory), trust authentication.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    account: Option<(u32, u32)>,
    port: u16,
    server: Option<Child>,
}

impl PrivatePostgres {
    /// `initdb`, then start the server and wait until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let account = postgres_account()?;
        let dir = tempfile::Builder::new().prefix("ashgate-fleet-pg").tempdir()?;
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-D",
                "data",
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("initdb.log"))?);
        if let Some((uid, gid)) = account {
            initdb.uid(uid).gid(gid);
        }
        let status = initdb.status().context("run initdb")?;
        if !status.success() {
            bail!("initdb failed: {}", tail(&dir.path().join("initdb.log"), 20));
        }
        let mut postgres = Self { bin, dir, account, port: free_port(), server: None };
        postgres.start_server()?;
        Ok(postgres)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Starts the server (again) on the same port and data, waiting until it accepts connections.
    pub fn start_server(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path())?;
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .args(["-D", "data", "-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some((uid, gid)) = self.account {
            command.uid(uid).gid(gid);
        }
        self.server = Some(command.spawn().context("start postgres")?);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.is_ready() {
            if let Some(server) = &mut self.server
                && let Some(status) = server.try_wait()?
            {
                bail!("postgres exited ({status}): {}", tail(&self.log_path(), 20));
            }
            if Instant::now() > deadline {
                bail!("postgres on {addr} not ready after 60 s: {}", tail(&self.log_path(), 20));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Whether the server accepts a query (not just a TCP connection: it refuses them while it
    /// starts or recovers).
    pub fn is_ready(&self) -> bool {
        let ready = Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", "1"])
            .status();
        matches!(ready, Ok(status) if status.success())
    }

    /// Immediate shutdown (SIGQUIT: every backend exits at once, no checkpoint; the next start
    /// runs crash recovery), as a crash of the database server looks to its clients.
    pub fn stop_immediate(&mut self) -> anyhow::Result<()> {
        if let Some(mut server) = self.server.take() {
            signal(server.id(), "QUIT")?;
            if wait_timeout(&mut server, Duration::from_secs(30))?.is_none() {
                let _ = server.kill();
                let _ = server.wait();
            }
        }
        Ok(())
    }

    /// Every span row's trace id with its number of rows.
    pub async fn span_counts(&self) -> anyhow::Result<HashMap<String, i64>> {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT trace_id, COUNT(*) FROM spans GROUP BY trace_id")
                .fetch_all(&mut conn)
                .await?;
        conn.close().await?;
        Ok(rows.into_iter().collect())
    }

    /// Bytes the spans table takes on disk, indexes and TOAST included.
    pub async fn span_table_bytes(&self) -> anyhow::Result<i64> {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await?;
        let (bytes,): (i64,) =
            sqlx::query_as("SELECT pg_total_relation_size('spans')::BIGINT").fetch_one(&mut conn).await?;
        conn.close().await?;
        Ok(bytes)
    }

    /// Rows in the spans table.
    pub async fn span_total(&self) -> anyhow::Result<i64> {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await?;
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM spans").fetch_one(&mut conn).await?;
        conn.close().await?;
        Ok(total)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop_immediate();
    }
}

/// A `redis-server` of this test's own on a free loopback port, without persistence.
pub struct PrivateRedis {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Child>,
}

impl PrivateRedis {
    /// Starts it and waits until it answers PING.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ashgate-fleet-redis").tempdir()?;
        let mut redis = Self { dir, port: free_port(), server: None };
        redis.start_server()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port.
    pub fn start_server(&mut self) -> anyhow::Result<()> {
        let log = self.dir.path().join("redis.log");
        let server = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--logfile"])
            .arg(&log)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start redis-server")?;
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.pings() {
            if Instant::now() > deadline {
                bail!("redis-server on port {} not ready: {}", self.port, tail(&log, 20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(200),
        ) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// SIGKILL: every connection drops at once.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

//! Fault injection: a TCP proxy a test puts between a service and one of its dependencies
//! (identity-svc, PostgreSQL, Redis, an SMTP server, an OpenID Provider), so the dependency
//! can be taken down, made to hang, and brought back, without touching the real server (the
//! machine's PostgreSQL and Redis are shared by every test and must never be stopped).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes bytes both ways: the dependency is up.
    Forward,
    /// Nothing listens (connections are refused) and open connections are cut: the dependency
    /// is down, or was stopped mid-request.
    Down,
    /// Connections are accepted and never answered, open ones go silent: the dependency hangs.
    Blackhole,
    /// Like [`Mode::Blackhole`], but open connections stay open (no FIN, no reset) and pass
    /// nothing until the mode changes: a host paused or cut off by the network.
    Stall,
}

/// A loopback TCP proxy to `upstream` whose [`Mode`] a test switches at any time.
pub struct TcpProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, modes) = watch::channel(Mode::Forward);
        let task = tokio::spawn(supervise(listener, addr, upstream, modes));
        Ok(Self { addr, mode, task })
    }

    /// Where clients connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the mode; open connections follow at once.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn supervise(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut modes: watch::Receiver<Mode>,
) {
    let mut listener = Some(listener);
    loop {
        let mode = *modes.borrow_and_update();
        if mode == Mode::Down {
            // Closing the listener makes new connections fail with "connection refused".
            listener = None;
            if modes.changed().await.is_err() {
                return;
            }
            continue;
        }
        let active = match listener.take() {
            Some(active) => active,
            None => match bind_again(addr).await {
                Some(active) => active,
                None => return,
            },
        };
        loop {
            tokio::select! {
                accepted = active.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(connection(client, upstream, mode, modes.clone()));
                    }
                }
                changed = modes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        listener = Some(active);
    }
}

/// The port was ours a moment ago; another process may hold it briefly, so retry for a while.
async fn bind_again(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// One client connection, in the mode it was accepted in, until the mode changes (or, when the
/// mode turns to [`Mode::Stall`], held open and silent until it changes again).
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: Mode,
    mut modes: watch::Receiver<Mode>,
) {
    match mode {
        Mode::Forward => {
            let Ok(mut server) = TcpStream::connect(upstream).await else { return };
            let changed = tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                changed = modes.changed() => changed.is_ok(),
            };
            if changed && *modes.borrow() == Mode::Stall {
                let _ = modes.changed().await;
            }
        }
        // Swallow whatever the client sends; answer nothing.
        Mode::Blackhole | Mode::Down | Mode::Stall => {
            let mut sink = [0u8; 4096];
            let swallow = async { while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {} };
            tokio::select! {
                () = swallow => {}
                _ = modes.changed() => {}
            }
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit (children inherit it);
/// returns the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A write lock held on one table of a test database by another connection, as a long
/// transaction of someone else's would: writes to the table wait until [`TableLock::release`]
/// (or drop). SQLite has one writer per database, so there the whole database is locked for
/// writing; PostgreSQL locks the table in `EXCLUSIVE` mode (reads go on, writes wait).
pub struct TableLock {
    conn: Option<sqlx::AnyConnection>,
}

impl TableLock {
    /// Takes the lock on `table` of `database`.
    pub async fn hold(database: &crate::collector::TestDatabase, table: &str) -> anyhow::Result<Self> {
        use sqlx::{Connection as _, Executor as _};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(database.url.expose()).await?;
        if database.is_postgres() {
            conn.execute("BEGIN").await?;
            conn.execute(sqlx::AssertSqlSafe(format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))).await?;
        } else {
            conn.execute("BEGIN IMMEDIATE").await?;
        }
        Ok(Self { conn: Some(conn) })
    }

    /// Ends the transaction, letting the waiting writes through.
    pub async fn release(mut self) -> anyhow::Result<()> {
        use sqlx::{Connection as _, Executor as _};
        if let Some(mut conn) = self.conn.take() {
            conn.execute("ROLLBACK").await?;
            conn.close().await?;
        }
        Ok(())
    }
}

//! 10,000 concurrent idle connections against the real `ashgate` binary (a child process, so
//! its memory is its own): the server keeps serving, and its resident memory grows by a
//! bounded amount per connection. Idle connections are also closed after the header deadline
//! (`abuse.rs`), so the growth is bounded in time as well as in size.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ashgate_testkit::collector::free_port;
use ashgate_testkit::faults::{raise_open_files_limit, rss_kib};
use tokio::net::TcpStream;

use crate::support::{raw_exchange, status_of};

const CONNECTIONS: usize = 10_000;
/// Measured: about 3-4 KiB per idle connection (a task and hyper's connection state). The
/// bound leaves room for allocator slack, and is far below what a per-connection buffer of
/// the header limit (400 KiB) would cost.
const MAX_BYTES_PER_CONNECTION: u64 = 16 * 1024;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_ashgate(dir: &std::path::Path, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PHOENIX_ENABLE_AUTH", "true")
        .env("PHOENIX_SECRET", "conn-secret-0123456789abcdefghijklmnop")
        .env("PHOENIX_WORKING_DIR", dir)
        .env("PHOENIX_PORT", port.to_string())
        .env("PHOENIX_GRPC_PORT", free_port().to_string())
        .env("ASHGATE_OTLP_HTTP_PORT", free_port().to_string())
        .env("ASHGATE_IDENTITY_PORT", free_port().to_string())
        .env("ASHGATE_IDENTITY_METRICS_PORT", free_port().to_string())
        .env("ASHGATE_HTTP_MAX_CONNECTIONS", (CONNECTIONS + 100).to_string())
        .env("ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS", "120")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening"));
    assert!(listening, "ashgate did not start");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_cost_bounded_memory() {
    let limit = raise_open_files_limit();
    assert!(limit > (CONNECTIONS + 500) as u64, "open-files limit {limit} is too low for this test");
    let dir =
        std::env::temp_dir().join(format!("ashgate-connections-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let server = start_ashgate(&dir, port);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let pid = server.0.id();

    // Warm up: every route's first use allocates once.
    for path in ["/healthz", "/login", "/v1/user"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        assert!(status_of(&raw_exchange(addr, request.as_bytes(), Duration::from_secs(10)).await) > 0);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid).unwrap();

    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS / 500 {
        let batch = futures::future::join_all((0..500).map(|_| TcpStream::connect(addr))).await;
        held.extend(batch.into_iter().map(Result::unwrap));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid).unwrap();

    // Still serving with all of them open.
    let answer = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");

    let per_connection = after.saturating_sub(before) * 1024 / CONNECTIONS as u64;
    eprintln!(
        "idle connections: {CONNECTIONS} held, RSS {before} KiB -> {after} KiB, {per_connection} bytes per connection"
    );
    assert!(
        per_connection <= MAX_BYTES_PER_CONNECTION,
        "{per_connection} bytes per idle connection (bound {MAX_BYTES_PER_CONNECTION})"
    );
    drop(held);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP connection that never sends its HTTP/2 preface (anyone who can reach the port, or a
/// verifier reconnecting at that moment) used to hold identity-svc's graceful shutdown open
/// until it closed (hyper issue #4170), so a rolling restart waited for the orchestrator's
/// SIGKILL. Now the drain is bounded: the process stops on its own, successfully.
#[test]
fn an_idle_connection_cannot_hold_identity_svc_open_after_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .arg("identity")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("PHOENIX_WORKING_DIR", dir.path())
        .env("ASHGATE_IDENTITY_PORT", port.to_string())
        .env("ASHGATE_IDENTITY_METRICS_PORT", free_port().to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert!(
        lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening")),
        "identity-svc did not start"
    );
    let idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let started = std::time::Instant::now();
    let limit = ashgate_identity::grpc::DRAIN_LIMIT + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("identity-svc was still running {limit:?} after SIGTERM with one idle connection open");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(idle);
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("connections still open after the drain limit: stopping anyway"), "{stderr}");
}

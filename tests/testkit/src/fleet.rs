//! Fleet fixtures: the multi-replica topology of docker-compose.yml as plain OS processes on
//! loopback ports: a private PostgreSQL and a private Redis (same software as the machine's,
//! own data directories and ports, so they can be killed and restarted without disturbing the
//! tests that share the machine's servers), identity-svc ×2, collector-svc ×2 and a gateway,
//! each a child process of the `ashgate` binary that can be SIGKILLed and started again on the
//! same ports.

mod stores;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub use stores::{PG_BIN_ENV, PrivatePostgres, PrivateRedis};

use crate::collector::free_port;
use crate::identity::{ADMIN_SECRET, GATEWAY_TOKEN, INTERNAL_TOKEN, SECRET};

/// Variable overriding the services' `RUST_LOG` (default `info`).
pub const LOG_ENV: &str = "ASHGATE_FLEET_RUST_LOG";
/// Variable naming a directory the fleet's logs are copied to when it stops (by default they
/// go with its temporary directory).
pub const KEEP_LOGS_ENV: &str = "ASHGATE_FLEET_LOG_DIR";

/// Sends `signal` (`KILL`, `TERM`, `QUIT`, ...) to `pid`.
fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status()?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed");
    }
    Ok(())
}

/// Waits for `child` to exit, at most `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `lines` lines of a log file (for failure messages).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One ashgate service in a child process, restartable with the same command and environment.
pub struct ServiceProcess {
    /// `identity-1`, `collector-2`, ...
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `program args` with exactly `env` (plus PATH) and waits for its
    /// `<something> listening ...` line on standard output; standard error (the logs) goes to
    /// `log`, appended across restarts.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut service = Self {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
            log,
            child: None,
        };
        service.start()?;
        Ok(service)
    }

    /// Starts the process (again) and waits until it says it listens.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut command = Command::new(&self.program);
        command.args(&self.args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        if let Ok(path) = std::env::var("PATH") {
            command.env("PATH", path);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn().with_context(|| format!("spawn {}", self.name))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(" listening") {
                    let _ = tx.send(line);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(_) => {
                self.child = Some(child);
                Ok(())
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not start: {}", self.name, tail(&self.log, 30))
            }
        }
    }

    /// Sets (`Some`) or removes (`None`) a variable for the next [`ServiceProcess::start`], as
    /// an operator changes a replica's configuration before restarting it.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_owned(), value.to_owned()));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful shutdown), waiting at most `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else { bail!("{} is not running", self.name) };
        signal(child.id(), "TERM")?;
        match wait_timeout(&mut child, timeout)? {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not stop within {timeout:?} of SIGTERM", self.name)
            }
        }
    }

    /// Its log (standard error).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One service to start: its name (and log file name), `ashgate` subcommand and environment.
struct Launch {
    name: String,
    command: &'static str,
    env: Vec<(String, String)>,
}

/// Starts every launch at once (as Compose starts replicas), then waits for each to listen.
fn spawn_concurrently(
    binary: &Path,
    logs: &Path,
    launches: Vec<Launch>,
) -> anyhow::Result<Vec<ServiceProcess>> {
    let handles: Vec<_> = launches
        .into_iter()
        .map(|Launch { name, command, env }| {
            let (binary, log) = (binary.to_owned(), logs.join(format!("{name}.log")));
            std::thread::spawn(move || ServiceProcess::spawn(&name, &binary, &[command], env, log))
        })
        .collect();
    handles.into_iter().map(|h| h.join().map_err(|_| anyhow::anyhow!("spawn thread panicked"))?).collect()
}

/// Ports of one identity replica.
#[derive(Debug, Clone, Copy)]
pub struct IdentityPorts {
    /// gRPC.
    pub grpc: u16,
    /// HTTP `/healthz`, `/readyz`, `/metrics`.
    pub ops: u16,
}

/// Ports of one collector.
#[derive(Debug, Clone, Copy)]
pub struct CollectorPorts {
    /// OTLP/gRPC.
    pub grpc: u16,
    /// OTLP/HTTP, `/readyz`, `/metrics`.
    pub http: u16,
}

/// The whole topology: PostgreSQL, Redis, identity ×2, collector ×2, gateway.
pub struct Fleet {
    /// identity-svc replicas (same database and Redis).
    pub identities: Vec<ServiceProcess>,
    /// collector-svc replicas (both identity replicas).
    pub collectors: Vec<ServiceProcess>,
    /// The gateway (both identity replicas, both collectors).
    pub gateway: ServiceProcess,
    /// Ports of each identity replica.
    pub identity_ports: Vec<IdentityPorts>,
    /// Ports of each collector.
    pub collector_ports: Vec<CollectorPorts>,
    /// The gateway's port.
    pub gateway_port: u16,
    /// The database server.
    pub postgres: PrivatePostgres,
    /// The Redis server.
    pub redis: PrivateRedis,
    /// Logs of every service.
    pub dir: tempfile::TempDir,
}

/// Replicas of identity-svc and collector-svc the fleet runs.
pub const REPLICAS: usize = 2;

impl Fleet {
    /// Starts everything, the replicas of each service at the same time (as Compose does), with
    /// JSON logs. `binary` is the `ashgate` binary (`env!("CARGO_BIN_EXE_ashgate")`).
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, &[])
    }

    /// [`Fleet::start`] with `extra` variables given to every service.
    pub fn start_with(binary: &Path, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let postgres = PrivatePostgres::start()?;
        let redis = PrivateRedis::start()?;
        let dir = tempfile::Builder::new().prefix("ashgate-fleet-logs").tempdir()?;
        let identity_ports: Vec<IdentityPorts> =
            (0..REPLICAS).map(|_| IdentityPorts { grpc: free_port(), ops: free_port() }).collect();
        let collector_ports: Vec<CollectorPorts> =
            (0..REPLICAS).map(|_| CollectorPorts { grpc: free_port(), http: free_port() }).collect();
        let gateway_port = free_port();
        let log_filter =
            std::env::var(LOG_ENV).unwrap_or_else(|_| "info,sqlx=warn,tower=warn,h2=warn,hyper=warn".into());
        let list = |urls: Vec<String>| urls.join(",");
        let identity_urls =
            list(identity_ports.iter().map(|p| format!("http://127.0.0.1:{}", p.grpc)).collect());
        let common = |extra: &[(&str, String)]| -> Vec<(String, String)> {
            let mut env: Vec<(String, String)> = [
                ("HOME", dir.path().display().to_string()),
                ("PHOENIX_HOST", "127.0.0.1".into()),
                ("PHOENIX_ENABLE_AUTH", "true".into()),
                ("PHOENIX_SECRET", SECRET.into()),
                ("ASHGATE_INTERNAL_TOKEN", INTERNAL_TOKEN.into()),
                ("ASHGATE_IDENTITY_URL", identity_urls.clone()),
                ("ASHGATE_LOG_FORMAT", "json".into()),
                ("RUST_LOG", log_filter.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            for (key, value) in extra_env {
                env.retain(|(k, _)| k != key);
                env.push(((*key).to_owned(), (*value).to_owned()));
            }
            env
        };

        let spawn_all = |launches: Vec<Launch>| spawn_concurrently(binary, dir.path(), launches);

        let identities = spawn_all(
            identity_ports
                .iter()
                .enumerate()
                .map(|(i, ports)| {
                    let env = common(&[
                        ("PHOENIX_ADMIN_SECRET", ADMIN_SECRET.into()),
                        ("ASHGATE_GATEWAY_TOKEN", GATEWAY_TOKEN.into()),
                        ("PHOENIX_SQL_DATABASE_URL", postgres.url()),
                        ("ASHGATE_REDIS_URL", redis.url()),
                        ("ASHGATE_REDIS_NAMESPACE", "fleet".into()),
                        ("ASHGATE_IDENTITY_PORT", ports.grpc.to_string()),
                        ("ASHGATE_IDENTITY_METRICS_PORT", ports.ops.to_string()),
                        // The test signs in many times from 127.0.0.1.
                        ("PHOENIX_DISABLE_RATE_LIMIT", "true".into()),
                        ("ASHGATE_PASSWORD_HASH_CONCURRENCY", "1".into()),
                    ]);
                    Launch { name: format!("identity-{}", i + 1), command: "identity", env }
                })
                .collect(),
        )?;
        let collectors = spawn_all(
            collector_ports
                .iter()
                .enumerate()
                .map(|(i, ports)| {
                    let env = common(&[
                        ("PHOENIX_SQL_DATABASE_URL", postgres.url()),
                        ("PHOENIX_GRPC_PORT", ports.grpc.to_string()),
                        ("ASHGATE_OTLP_HTTP_PORT", ports.http.to_string()),
                    ]);
                    Launch { name: format!("collector-{}", i + 1), command: "collector", env }
                })
                .collect(),
        )?;
        let gateway_env = common(&[
            ("PHOENIX_PORT", gateway_port.to_string()),
            ("ASHGATE_GATEWAY_TOKEN", GATEWAY_TOKEN.into()),
            (
                "ASHGATE_COLLECTOR_GRPC_URLS",
                list(collector_ports.iter().map(|p| format!("http://127.0.0.1:{}", p.grpc)).collect()),
            ),
            (
                "ASHGATE_COLLECTOR_HTTP_URLS",
                list(collector_ports.iter().map(|p| format!("http://127.0.0.1:{}", p.http)).collect()),
            ),
        ]);
        let gateway =
            spawn_all(vec![Launch { name: "gateway".into(), command: "gateway", env: gateway_env }])?
                .pop()
                .context("gateway")?;
        Ok(Self {
            identities,
            collectors,
            gateway,
            identity_ports,
            collector_ports,
            gateway_port,
            postgres,
            redis,
            dir,
        })
    }

    /// `http://127.0.0.1:<grpc port>` of identity replica `i`.
    pub fn identity_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.identity_ports[i].grpc)
    }

    /// `http://127.0.0.1:<ops port><path>` of identity replica `i`.
    pub fn identity_ops_url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.identity_ports[i].ops)
    }

    /// `http://127.0.0.1:<grpc port>` of collector `i`.
    pub fn collector_grpc_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.collector_ports[i].grpc)
    }

    /// `http://127.0.0.1:<http port><path>` of collector `i`.
    pub fn collector_http_url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.collector_ports[i].http)
    }

    /// `http://127.0.0.1:<port><path>` of the gateway.
    pub fn gateway_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway_port)
    }

    /// Every service process, gateway first (the order of a graceful shutdown: front to back).
    pub fn services_mut(&mut self) -> Vec<&mut ServiceProcess> {
        let mut all = vec![&mut self.gateway];
        all.extend(self.collectors.iter_mut());
        all.extend(self.identities.iter_mut());
        all
    }

    /// The last lines of every log, for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let services = self.identities.iter().chain(&self.collectors).chain(std::iter::once(&self.gateway));
        for service in services {
            out.push_str(&format!("--- {} ---\n{}\n", service.name, tail(service.log_path(), lines)));
        }
        out.push_str(&format!("--- postgres ---\n{}\n", tail(&self.postgres.log_path(), lines)));
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let Ok(keep) = std::env::var(KEEP_LOGS_ENV) else { return };
        let keep = PathBuf::from(keep);
        let _ = std::fs::create_dir_all(&keep);
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.push(self.postgres.log_path());
        for log in logs {
            if let Some(name) = log.file_name() {
                let _ = std::fs::copy(&log, keep.join(name));
            }
        }
    }
}

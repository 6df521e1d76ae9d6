//! A real SMTP server on loopback for password-recovery tests: Python's `aiosmtpd`
//! (`tests/smtp/server.py`, `pip install -r tests/smtp/requirements.txt`), AUTH required, every
//! accepted message written as JSON to a temporary directory that tests read.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The SMTP username every test server accepts.
pub const SMTP_USERNAME: &str = "ashgate-mailer";
/// Its password.
pub const SMTP_PASSWORD: &str = "smtp-password-0123";

/// One received message, as the server decoded it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_tos: Vec<String>,
    /// Who authenticated the SMTP session that sent it.
    pub auth_user: Option<String>,
    /// `Subject:`.
    pub subject: String,
    /// `To:`.
    pub to: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

impl Mail {
    /// The first `http(s)://…/reset-password-with-token?token=…` link in the text part.
    pub fn reset_link(&self) -> Option<String> {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains("/reset-password-with-token?token="))
            .map(str::to_owned)
    }
}

/// A running aiosmtpd, stopped on drop.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    _child: Child,
}

/// `ASHGATE_PYTHON`, else `target/test-venv` (where `cargo xtask deps` installs aiosmtpd), else
/// `python3`.
fn python() -> String {
    if let Ok(python) = std::env::var("ASHGATE_PYTHON") {
        return python;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    if venv.exists() { venv.display().to_string() } else { "python3".into() }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../smtp/server.py")
}

impl SmtpServer {
    /// Starts the server and waits until it listens. Panics with the install command when
    /// `aiosmtpd` is missing.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let python = python();
        let mut child = Command::new(&python)
            .arg("-W")
            .arg("ignore")
            .arg(script())
            .arg(dir.path())
            .arg(SMTP_USERNAME)
            .arg(SMTP_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(port) = value["port"].as_u64()
                {
                    return u16::try_from(port).ok();
                }
            }
            None
        })
        .await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let Ok(Some(port)) = ready else {
            panic!(
                "the SMTP test server did not start: is aiosmtpd installed? \
                 (`cargo xtask deps` puts it in target/test-venv)"
            );
        };
        Self { port, dir, _child: child }
    }

    /// `PHOENIX_SMTP_*` for identity-svc to send through this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.env_with_port(self.port)
    }

    /// Like [`SmtpServer::env`], with identity-svc sending to `port` on 127.0.0.1 instead (e.g.
    /// a proxy in front of this server); same credentials and sender.
    pub fn env_with_port(&self, port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("PHOENIX_SMTP_HOSTNAME", "127.0.0.1".into()),
            ("PHOENIX_SMTP_PORT", port.to_string()),
            ("PHOENIX_SMTP_USERNAME", SMTP_USERNAME.into()),
            ("PHOENIX_SMTP_PASSWORD", SMTP_PASSWORD.into()),
            ("PHOENIX_SMTP_MAIL_FROM", "ashgate@example.com".into()),
        ]
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("message file");
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            })
            .collect()
    }

    /// Waits (up to 30 s) until at least `count` messages arrived and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(Instant::now() < deadline, "expected {count} mail(s), got {}", messages.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Failed AUTH attempts the server saw ("MECHANISM username" lines).
    pub fn auth_failures(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("auth-failures.log"))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

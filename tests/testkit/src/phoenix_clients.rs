//! Phoenix's own clients as child processes: the Python `arize-phoenix-client` (pinned in
//! `tests/phoenix-client/requirements.txt`, installed into `target/test-venv` by
//! `cargo xtask deps`) and the TypeScript `@arizeai/phoenix-client` (pinned in
//! `tests/phoenix-client-js/package-lock.json`, `npm ci`). Each runs a plan of calls (see
//! `run.py` / `run.mjs`) against a running ashgate and prints one JSON object of results.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python with the pinned client: `ASHGATE_TEST_PYTHON`, else `target/test-venv`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("ASHGATE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = tests_dir().join("../target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "the Phoenix Python client is not installed: run `cargo xtask deps` (it creates target/test-venv)"
    );
    venv
}

async fn run(mut command: Command, what: &str) -> Value {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what} printed no JSON ({e}): {stdout}"))
}

/// Runs `plan` with the Python client against `base_url` (with `api_key`, when given).
pub async fn python_client(base_url: &str, api_key: Option<&str>, plan: &Value) -> Value {
    let mut command = Command::new(python());
    command
        .arg(tests_dir().join("phoenix-client/run.py"))
        .arg(plan.to_string())
        .env("PHOENIX_BASE_URL", base_url);
    match api_key {
        Some(key) => command.env("PHOENIX_API_KEY", key),
        None => command.env_remove("PHOENIX_API_KEY"),
    };
    run(command, "the Phoenix Python client").await
}

/// Runs `plan` with the TypeScript client against `base_url` (with `api_key`, when given).
pub async fn typescript_client(base_url: &str, api_key: Option<&str>, plan: &Value) -> Value {
    let dir = tests_dir().join("phoenix-client-js");
    assert!(
        dir.join("node_modules/@arizeai/phoenix-client").exists(),
        "the Phoenix TypeScript client is not installed: run `cargo xtask deps`"
    );
    let node = std::env::var("ASHGATE_NODE").unwrap_or_else(|_| "node".into());
    let mut command = Command::new(node);
    command.arg(dir.join("run.mjs")).arg(plan.to_string()).current_dir(&dir).env("PHOENIX_HOST", base_url);
    match api_key {
        Some(key) => command.env("PHOENIX_API_KEY", key),
        None => command.env_remove("PHOENIX_API_KEY"),
    };
    run(command, "the Phoenix TypeScript client").await
}

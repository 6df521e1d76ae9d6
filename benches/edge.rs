//! The all-in-one binary at its edge: `cargo bench --bench edge`.
//!
//! Starts the release `ashgate` binary (auth on, SQLite, as `cargo run --release` with a
//! secret) as a child process and drives it through the gateway on 6006 the way issue 13
//! measured it: 8 OTLP/HTTP clients sending 100-span exports (about 133 KB of protobuf each)
//! with a valid key, then with bad keys, then sign-ins, then all three at once. After each phase
//! it reads the process's `VmRSS` and `VmHWM` (peak), and at the end its idle RSS after the
//! sign-in storm; bad-key answers are counted by status.
//!
//! A/B in one run: `ASHGATE_EDGE_BINARIES=before=/path/to/old/ashgate,after=target/release/ashgate`
//! runs the same workload against each binary in turn (default: this build's binary).
//! `ASHGATE_BENCH_SECONDS` sets each load phase's length (default 8).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark stops at its first failure"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::common::v1::{
    AnyValue, KeyValue, any_value,
};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::resource::v1::Resource;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span,
};
use ashgate_testkit::collector::deps::prost::Message as _;
use ashgate_testkit::collector::deps::reqwest;
use ashgate_testkit::collector::free_port;
use ashgate_testkit::faults::memory_kib;
use ashgate_testkit::identity::{ADMIN_SECRET, SECRET};

const CLIENTS: usize = 8;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

/// (label, binary) pairs to measure.
fn binaries() -> Vec<(String, PathBuf)> {
    match std::env::var("ASHGATE_EDGE_BINARIES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|pair| {
                let (label, path) = pair.split_once('=').expect("label=path");
                (label.trim().to_owned(), PathBuf::from(path.trim()))
            })
            .collect(),
        _ => vec![("this build".to_owned(), PathBuf::from(env!("CARGO_BIN_EXE_ashgate")))],
    }
}

async fn run() {
    let seconds: u64 = std::env::var("ASHGATE_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let body = Arc::new(export_body(100));
    eprintln!("{seconds} s per load phase; a 100-span export is {} bytes", body.len());
    let mut rows = Vec::new();
    for (label, binary) in binaries() {
        eprintln!("== {label}: {}", binary.display());
        rows.push((label, measure(&binary, &body, Duration::from_secs(seconds)).await));
    }
    println!(
        "| binary | start RSS | after ingest: peak | bad keys: answers | after bad keys: peak | after 30 sign-ins: peak | all at once: peak | idle RSS after | ingest exports/s |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for (label, m) in rows {
        let statuses: Vec<String> = m.bad_key_statuses.iter().map(|(s, n)| format!("{n} × {s}")).collect();
        println!(
            "| {label} | {:.0} MiB | {:.0} MiB | {} | {:.0} MiB | {:.0} MiB | {:.0} MiB | {:.0} MiB | {:.0} |",
            mib(m.start_rss),
            mib(m.ingest_hwm),
            statuses.join(", "),
            mib(m.bad_key_hwm),
            mib(m.sign_in_hwm),
            mib(m.mixed_hwm),
            mib(m.idle_rss),
            m.ingest_rate,
        );
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[derive(Default)]
struct Measured {
    start_rss: u64,
    ingest_hwm: u64,
    ingest_rate: f64,
    bad_key_statuses: BTreeMap<u16, u64>,
    bad_key_hwm: u64,
    sign_in_hwm: u64,
    mixed_hwm: u64,
    idle_rss: u64,
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(binary: &PathBuf) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("PHOENIX_WORKING_DIR", dir.path())
            .env("PHOENIX_ENABLE_AUTH", "true")
            .env("PHOENIX_SECRET", SECRET)
            .env("PHOENIX_ADMIN_SECRET", ADMIN_SECRET)
            .env("PHOENIX_DISABLE_RATE_LIMIT", "true")
            .env("PHOENIX_PORT", port.to_string())
            .env("PHOENIX_GRPC_PORT", free_port().to_string())
            .env("ASHGATE_OTLP_HTTP_PORT", free_port().to_string())
            .env("ASHGATE_IDENTITY_PORT", free_port().to_string())
            .env("ASHGATE_IDENTITY_METRICS_PORT", free_port().to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ashgate");
        let server = Self { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if client.get(format!("{}/healthz", server.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ashgate did not start");
    }

    fn memory(&self) -> (u64, u64) {
        memory_kib(self.child.id()).unwrap_or_default()
    }
}

async fn measure(binary: &PathBuf, body: &Arc<Vec<u8>>, phase: Duration) -> Measured {
    let server = Server::start(binary).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut m = Measured { start_rss: server.memory().0, ..Measured::default() };
    let key = system_key(&client, &server.base).await;

    let (accepted, _) = exports(&client, &server.base, body, Some(&key), CLIENTS, phase).await;
    m.ingest_rate = accepted as f64 / phase.as_secs_f64();
    m.ingest_hwm = server.memory().1;

    let (_, statuses) = exports(&client, &server.base, body, None, CLIENTS, phase).await;
    m.bad_key_statuses = statuses;
    m.bad_key_hwm = server.memory().1;

    sign_ins(&client, &server.base, 30).await;
    m.sign_in_hwm = server.memory().1;

    // Ingest, bad keys and a sign-in storm at once.
    let half = CLIENTS / 2;
    tokio::join!(
        exports(&client, &server.base, body, Some(&key), half, phase),
        exports(&client, &server.base, body, None, half, phase),
        sign_ins(&client, &server.base, 30),
    );
    m.mixed_hwm = server.memory().1;
    tokio::time::sleep(Duration::from_secs(5)).await;
    m.idle_rss = server.memory().0;
    m
}

async fn system_key(client: &reqwest::Client, base: &str) -> String {
    let created: serde_json::Value = client
        .post(format!("{base}/v1/system/api_keys"))
        .bearer_auth(ADMIN_SECRET)
        .json(&serde_json::json!({"data": {"name": "edge-bench"}}))
        .send()
        .await
        .expect("create key")
        .json()
        .await
        .expect("key json");
    created["data"]["key"].as_str().expect("key").to_owned()
}

/// `clients` loops of `POST /v1/traces` for `phase`, with `key` or a bad one per request:
/// (exports answered 200, count of each status; 0 = no answer).
async fn exports(
    client: &reqwest::Client,
    base: &str,
    body: &Arc<Vec<u8>>,
    key: Option<&str>,
    clients: usize,
    phase: Duration,
) -> (u64, BTreeMap<u16, u64>) {
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + phase;
    let workers = (0..clients).map(|worker| {
        let (client, url, body, key, accepted) = (
            client.clone(),
            format!("{base}/v1/traces"),
            body.clone(),
            key.map(str::to_owned),
            accepted.clone(),
        );
        tokio::spawn(async move {
            let mut statuses = BTreeMap::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let credential = key.clone().unwrap_or_else(|| format!("bad-key-{worker}-{i}"));
                let answer = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .bearer_auth(credential)
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                let status = answer.map_or(0, |r| r.status().as_u16());
                if status == 200 {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                *statuses.entry(status).or_insert(0) += 1;
            }
            statuses
        })
    });
    let mut total = BTreeMap::new();
    for worker in futures::future::join_all(workers).await {
        for (status, n) in worker.expect("worker") {
            *total.entry(status).or_insert(0) += n;
        }
    }
    (accepted.load(Ordering::Relaxed), total)
}

/// `count` sequential sign-ins as the default admin.
async fn sign_ins(client: &reqwest::Client, base: &str, count: usize) {
    for _ in 0..count {
        let answer = client
            .post(format!("{base}/auth/login"))
            .json(&serde_json::json!({"email": "admin@localhost", "password": "admin"}))
            .send()
            .await
            .expect("sign-in");
        assert_eq!(answer.status(), 204, "sign-in");
    }
}

/// One export of `spans` spans (about 1.3 KB each, like an LLM span with its attributes).
fn export_body(spans: usize) -> Vec<u8> {
    let text = |k: &str, v: String| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }),
        ..Default::default()
    };
    let spans = (0..spans as u64)
        .map(|i| Span {
            trace_id: [7u8; 16].to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: format!("llm-call-{i}"),
            start_time_unix_nano: 1_764_230_000_000_000_000 + i,
            end_time_unix_nano: 1_764_230_001_000_000_000 + i,
            attributes: vec![
                text("openinference.span.kind", "LLM".into()),
                text("input.value", "What is the weather like on the moon today? ".repeat(14)),
                text("output.value", "There is no weather on the moon, only space. ".repeat(14)),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("openinference.project.name", "edge".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

//! collector-svc ingest benchmark: `cargo bench --bench ingest`.
//!
//! Starts the collector as a separate OS process (this binary re-executed with
//! `--collector-child`, which runs exactly what the `collector-svc` binary runs), so the memory
//! figures are the collector's alone; drives it with its own load generator (100-span exports,
//! each with a new trace id; an overload scenario uses 2000-span exports) over OTLP/gRPC and OTLP/HTTP protobuf at several concurrencies,
//! with a valid system API key against a real identity-svc (in this process) and with auth
//! disabled; then counts the rows the collector stored.
//!
//! Knobs: `ASHGATE_BENCH_SECONDS` (measured seconds per scenario, default 8),
//! `ASHGATE_BENCH_ONLY` (substring filter on scenario names, e.g. `grpc`), `ASHGATE_BENCH_REPEAT`
//! (rounds; the auth-overhead table uses the median of each scenario),
//! `ASHGATE_TEST_DATABASE_URL` (PostgreSQL server instead of SQLite).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark stops at its first failure"
)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ashgate_testkit::collector::deps::ashgate_collector;
use ashgate_testkit::collector::deps::ashgate_identity_client::env::Env;
use ashgate_testkit::collector::deps::bytes::{BufMut as _, Bytes, BytesMut};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::common::v1::{
    AnyValue, KeyValue, any_value,
};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::resource::v1::Resource;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status,
};
use ashgate_testkit::collector::deps::prost::Message as _;
use ashgate_testkit::collector::deps::reqwest;
use ashgate_testkit::collector::deps::tonic_prost::ProstDecoder;
use ashgate_testkit::collector::{CollectorProcess, TestDatabase, free_port};
use ashgate_testkit::identity::{INTERNAL_TOKEN, IdentityFixture};
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::transport::Channel;

const CHILD_FLAG: &str = "--collector-child";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Placeholder trace id in the encoded template, replaced per export.
const MARKER: [u8; 16] = *b"\xa5TRACE-MARKER-\x5a\xa5";

fn main() -> ExitCode {
    if std::env::args().any(|a| a == CHILD_FLAG) {
        return ashgate_collector::run_process(&Env::from_process());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
    ExitCode::SUCCESS
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Grpc,
    Http,
}

#[derive(Clone, Copy, Debug)]
enum Credential {
    /// Auth disabled in the collector.
    None,
    /// Auth enabled, a valid system API key.
    ValidKey,
    /// Auth enabled, a key identity-svc never issued.
    BadKey,
}

struct Scenario {
    transport: Transport,
    concurrency: usize,
    credential: Credential,
    spans_per_export: usize,
}

impl Scenario {
    fn name(&self) -> String {
        let auth = match self.credential {
            Credential::None => "auth off",
            Credential::ValidKey => "valid key",
            Credential::BadKey => "bad key",
        };
        let transport = if self.transport == Transport::Grpc { "grpc" } else { "http" };
        let size =
            if self.spans_per_export == 100 { String::new() } else { format!(" x{}", self.spans_per_export) };
        format!("{transport} c={} {auth}{size}", self.concurrency)
    }
}

#[derive(Default)]
struct Outcome {
    acked_exports: u64,
    refused: u64,
    failed: u64,
    latencies: Vec<Duration>,
    window: Duration,
    acked_in_window: u64,
    stored_spans: i64,
    acked_spans_total: u64,
    rss_kib: u64,
    hwm_kib: u64,
}

/// The encoded export, with the offsets of its trace ids (one per span) to rewrite.
struct Template {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
    spans: usize,
}

impl Template {
    fn new(spans: usize) -> Self {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
            ..Default::default()
        };
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let span_list = (0..spans as u64)
            .map(|i| Span {
                trace_id: MARKER.to_vec(),
                span_id: (0xa000_0000_0000_0000 + i + 1).to_be_bytes().to_vec(),
                parent_span_id: if i == 0 {
                    vec![]
                } else {
                    (0xa000_0000_0000_0001_u64).to_be_bytes().to_vec()
                },
                name: format!("ChatCompletion {i}"),
                kind: 3,
                start_time_unix_nano: now + i * 1_000,
                end_time_unix_nano: now + i * 1_000 + 250_000,
                attributes: vec![
                    kv("openinference.span.kind", "LLM"),
                    kv("llm.model_name", "gpt-4o-mini"),
                    kv("input.value", "What is the capital of France? Answer in one word."),
                    kv("output.value", "Paris."),
                    KeyValue {
                        key: "llm.token_count.total".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::IntValue(42)) }),
                        ..Default::default()
                    },
                ],
                status: Some(Status { code: 1, message: String::new() }),
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "bench"), kv("openinference.project.name", "bench")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans: span_list, ..Default::default() }],
                ..Default::default()
            }],
        };
        let bytes = request.encode_to_vec();
        let offsets =
            bytes.windows(16).enumerate().filter(|(_, w)| *w == MARKER).map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(offsets.len(), spans);
        Self { bytes, offsets, spans }
    }

    /// The export with trace id `trace` in every span.
    fn export(&self, trace: u64) -> Bytes {
        let mut bytes = BytesMut::from(self.bytes.as_slice());
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&trace.to_be_bytes());
        id[8..].copy_from_slice(&0x0123_4567_89ab_cdef_u64.to_be_bytes());
        for &offset in &self.offsets {
            bytes[offset..offset + 16].copy_from_slice(&id);
        }
        bytes.freeze()
    }
}

/// gRPC codec that sends pre-encoded bytes (the load generator must not spend the CPU it
/// measures on encoding) and decodes the OTLP response.
#[derive(Clone, Copy, Default)]
struct PreEncoded;

struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<ExportTraceServiceResponse>;
    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}

enum Client {
    Grpc(tonic::client::Grpc<Channel>),
    Http(reqwest::Client, String),
}

impl Client {
    async fn export(&mut self, body: Bytes, authorization: &Option<String>) -> Result<(), bool> {
        match self {
            Client::Grpc(grpc) => {
                grpc.ready().await.map_err(|_| false)?;
                let mut request = tonic::Request::new(body);
                if let Some(value) = authorization {
                    request.metadata_mut().insert("authorization", value.parse().expect("ascii"));
                }
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT_PATH);
                match grpc.unary(request, path, PreEncoded).await {
                    Ok(_) => Ok(()),
                    Err(status) => Err(matches!(
                        status.code(),
                        tonic::Code::Unauthenticated
                            | tonic::Code::ResourceExhausted
                            | tonic::Code::PermissionDenied
                    )),
                }
            }
            Client::Http(client, url) => {
                let mut request =
                    client.post(url.as_str()).header("content-type", "application/x-protobuf").body(body);
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => Ok(()),
                    Ok(response) => Err(response.status().is_client_error()),
                    Err(_) => Err(false),
                }
            }
        }
    }
}

async fn run() {
    let seconds: u64 = std::env::var("ASHGATE_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let repeat: usize = std::env::var("ASHGATE_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let only = std::env::var("ASHGATE_BENCH_ONLY").unwrap_or_default();
    let identity = IdentityFixture::start().await;
    let key = identity.system_key("bench").await;
    let next_trace = Arc::new(AtomicU64::new(1));
    eprintln!(
        "{seconds} s per scenario, {repeat} round(s); a 100-span export is {} bytes of protobuf",
        Template::new(100).bytes.len()
    );

    // Valid key and auth off back to back, so that both see the same background load.
    let mut scenarios = Vec::new();
    for transport in [Transport::Grpc, Transport::Http] {
        for concurrency in [1, 8, 32] {
            for credential in [Credential::ValidKey, Credential::None] {
                scenarios.push(Scenario { transport, concurrency, credential, spans_per_export: 100 });
            }
        }
    }
    for transport in [Transport::Grpc, Transport::Http] {
        let bad_key =
            Scenario { transport, concurrency: 8, credential: Credential::BadKey, spans_per_export: 100 };
        scenarios.push(bad_key);
    }
    // Overload: more than the writer can take, to show refusals and bounded memory.
    for transport in [Transport::Grpc, Transport::Http] {
        let overload =
            Scenario { transport, concurrency: 64, credential: Credential::ValidKey, spans_per_export: 2000 };
        scenarios.push(overload);
    }

    println!(
        "| scenario | stored spans/s | p50 ms | p99 ms | acked spans | stored spans | refused/s | VmHWM MiB | VmRSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rates: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..repeat {
        for scenario in scenarios.iter().filter(|s| s.name().contains(&only)) {
            let template = Arc::new(Template::new(scenario.spans_per_export));
            let outcome = run_scenario(scenario, &identity, &key, &template, &next_trace, seconds).await;
            let window = outcome.window.as_secs_f64().max(1e-9);
            let mut latencies = outcome.latencies.clone();
            latencies.sort();
            let percentile = |p: f64| {
                latencies
                    .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                    .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
                    .unwrap_or_else(|| "-".into())
            };
            let rate = outcome.acked_in_window as f64 * scenario.spans_per_export as f64 / window;
            println!(
                "| {} | {:.0} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} |",
                scenario.name(),
                rate,
                percentile(0.50),
                percentile(0.99),
                outcome.acked_spans_total,
                outcome.stored_spans,
                outcome.refused as f64 / window,
                outcome.hwm_kib as f64 / 1024.0,
                outcome.rss_kib as f64 / 1024.0,
            );
            if outcome.failed > 0 {
                eprintln!("  {}: {} exports failed (transport errors)", scenario.name(), outcome.failed);
            }
            match rates.iter_mut().find(|(name, _)| *name == scenario.name()) {
                Some((_, values)) => values.push(rate),
                None => rates.push((scenario.name(), vec![rate])),
            }
        }
    }
    print_auth_overhead(&rates);
}

/// Median stored spans/s with a valid key over auth off, per transport and concurrency.
fn print_auth_overhead(rates: &[(String, Vec<f64>)]) {
    let median = |name: &str| {
        let mut values = rates.iter().find(|(n, _)| n == name)?.1.clone();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    println!();
    println!("| transport, concurrency | valid key spans/s | auth off spans/s | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, _) in rates.iter().filter(|(n, _)| n.ends_with(" valid key")) {
        let base = name.trim_end_matches(" valid key");
        if let (Some(with_key), Some(off)) = (median(name), median(&format!("{base} auth off"))) {
            println!("| {base} | {with_key:.0} | {off:.0} | {:.2} |", with_key / off);
        }
    }
}

async fn run_scenario(
    scenario: &Scenario,
    identity: &IdentityFixture,
    key: &str,
    template: &Arc<Template>,
    next_trace: &Arc<AtomicU64>,
    seconds: u64,
) -> Outcome {
    let database = TestDatabase::fresh().await.expect("database");
    let mut env = vec![
        ("RUST_LOG", "warn".to_owned()),
        ("ASHGATE_SPANS_DATABASE_URL", database.url.expose().to_owned()),
        ("PHOENIX_GRPC_PORT", free_port().to_string()),
        ("ASHGATE_OTLP_HTTP_PORT", free_port().to_string()),
    ];
    let authorization = match scenario.credential {
        Credential::None => None,
        Credential::ValidKey => Some(format!("Bearer {key}")),
        Credential::BadKey => Some("Bearer not-a-key-identity-svc-issued".to_owned()),
    };
    if !matches!(scenario.credential, Credential::None) {
        env.push(("PHOENIX_ENABLE_AUTH", "true".into()));
        env.push(("ASHGATE_IDENTITY_URL", identity.url()));
        env.push(("ASHGATE_INTERNAL_TOKEN", INTERNAL_TOKEN.into()));
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut child = CollectorProcess::spawn(&exe, &[CHILD_FLAG], &env).expect("collector child");

    let warmup = Duration::from_secs(1);
    let started = Instant::now();
    let measure_from = started + warmup;
    let deadline = measure_from + Duration::from_secs(seconds);
    let authorization = Arc::new(authorization);
    let mut tasks = Vec::new();
    for _ in 0..scenario.concurrency {
        let mut client = match scenario.transport {
            Transport::Grpc => {
                let channel = Channel::from_shared(format!("http://{}", child.grpc_addr))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                Client::Grpc(tonic::client::Grpc::new(channel))
            }
            Transport::Http => {
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
                Client::Http(client, format!("http://{}/v1/traces", child.http_addr))
            }
        };
        let (template, next_trace, authorization) =
            (template.clone(), next_trace.clone(), authorization.clone());
        let backoff_on_refusal = !matches!(scenario.credential, Credential::BadKey);
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let body = template.export(next_trace.fetch_add(1, Ordering::Relaxed));
                let sent = Instant::now();
                let result = client.export(body, &authorization).await;
                let done = Instant::now();
                let measured = sent >= measure_from && done <= deadline;
                match result {
                    Ok(()) => {
                        outcome.acked_exports += 1;
                        if measured {
                            outcome.acked_in_window += 1;
                            outcome.latencies.push(done - sent);
                        }
                    }
                    Err(true) => {
                        if measured {
                            outcome.refused += 1;
                        }
                        // Exporters honour Retry-After / RetryInfo (1 s) on "retry later";
                        // the bad-key scenarios measure how fast refusals are answered.
                        if backoff_on_refusal {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    Err(false) => {
                        outcome.failed += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            outcome
        }));
    }
    let mut total = Outcome { window: Duration::from_secs(seconds), ..Outcome::default() };
    for task in tasks {
        let outcome = task.await.expect("load task");
        total.acked_exports += outcome.acked_exports;
        total.acked_in_window += outcome.acked_in_window;
        total.refused += outcome.refused;
        total.failed += outcome.failed;
        total.latencies.extend(outcome.latencies);
    }
    total.acked_spans_total = total.acked_exports * template.spans as u64;
    if let Some((rss, hwm)) = child.memory_kib() {
        total.rss_kib = rss;
        total.hwm_kib = hwm;
    }
    let status = child.terminate().expect("terminate collector");
    assert!(status.success(), "collector exited with {status}");
    let store = ashgate_collector::store::Store::connect(&database.url).await.expect("open span database");
    total.stored_spans = store.count_spans().await.expect("count");
    store.close().await;
    total
}

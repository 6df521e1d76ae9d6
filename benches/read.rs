//! Read-path benchmark: `cargo bench --bench read`.
//!
//! Fills one project with 1,000,000 spans (100,000 traces of 10 spans; a second project holds
//! 100,000 more) straight into the span store of a real collector-svc behind a real gateway
//! (auth off), then times `GET /v1/projects/{p}/spans` pages of 100 for each of Phoenix's
//! filters, and `GET /v1/projects/{p}/traces` pages, through the gateway's HTTP, gRPC to the
//! collector, SQL, and JSON back. Prints p50 and p99 per query.
//!
//! Knobs: `ASHGATE_TEST_DATABASE_URL` (a PostgreSQL server instead of SQLite),
//! `ASHGATE_BENCH_SPANS` (spans in the measured project, default 1,000,000),
//! `ASHGATE_BENCH_REQUESTS` (requests per query, default 200; a query stops after 20 s once it
//! has 10 samples, so one that scans the whole project reports fewer).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark stops at its first failure"
)]

use std::time::{Duration, Instant};

use ashgate_testkit::collector::deps::ashgate_collector::decode::attribute_index;
use ashgate_testkit::collector::deps::ashgate_collector::decode::rows::{IngestBatch, SpanRow};
use ashgate_testkit::collector::deps::ashgate_collector::store::{ResolvedBatch, Store};
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::base64::Engine as _;
use ashgate_testkit::gateway::deps::base64::engine::general_purpose::STANDARD;

const SPANS_PER_TRACE: u64 = 10;
const KINDS: [&str; 5] = ["LLM", "CHAIN", "TOOL", "RETRIEVER", "EMBEDDING"];
const MODELS: [&str; 5] = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b", "mistral-large"];
/// 2024-01-01T00:00:00Z in ns; spans spread over 30 days from here.
const START: i64 = 1_704_067_200_000_000_000;
const SPREAD: i64 = 30 * 86_400 * 1_000_000_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn trace_hex(trace: u64, project: u64) -> String {
    format!("{project:016x}{trace:016x}")
}

fn span_hex(trace: u64, index: u64) -> String {
    format!("{:016x}", (trace << 8) | (index + 1))
}

/// Span `index` of trace `trace`: one root per trace; kinds, names and models cycle; 2 % errors;
/// one span in 100 is an EMBEDDING; `user.id` has 1,000 values.
fn row(trace: u64, index: u64, project: u64, traces: u64) -> SpanRow {
    let n = trace * SPANS_PER_TRACE + index;
    let start = START + (SPREAD / traces.max(1) as i64) * trace as i64 + index as i64 * 1_000_000;
    let kind = if n % 100 == 7 { "EMBEDDING" } else { KINDS[(n % 4) as usize] };
    let status = if n % 50 == 4 { "ERROR" } else { "OK" };
    let attributes = format!(
        r#"{{"openinference.span.kind":"{kind}","llm.model_name":"{}","user.id":"user-{}","llm.token_count.prompt":{},"input.value":"question {n}"}}"#,
        MODELS[(n % 5) as usize],
        n % 1000,
        n % 300
    );
    SpanRow {
        project: 0,
        trace_id: trace_hex(trace, project),
        span_id: span_hex(trace, index),
        parent_span_id: if index == 0 { String::new() } else { span_hex(trace, 0) },
        name: format!("step-{}", n % 20),
        kind: "SPAN_KIND_INTERNAL",
        start_time_unix_nano: start,
        end_time_unix_nano: start + 5_000_000 + (n % 97) as i64 * 1_000_000,
        status_code: status,
        status_message: String::new(),
        attribute_hashes: attribute_index::hashes_of_json(&attributes).expect("an object"),
        attributes_json: attributes,
        events_json: "[]".into(),
        links_json: "[]".into(),
        resource: 0,
        span_kind: kind,
        llm_token_count_prompt: if kind == "LLM" { (n % 300) as i64 } else { 0 },
        llm_token_count_completion: 0,
    }
}

async fn fill(store: &Store, project: &str, project_no: u64, spans: u64) {
    let ids = store.project_ids(&[project]).await.expect("project");
    let traces = spans / SPANS_PER_TRACE;
    let started = Instant::now();
    let per_batch = 1_000; // traces per transaction
    let mut trace = 0;
    while trace < traces {
        let rows = (trace..(trace + per_batch).min(traces))
            .flat_map(|t| (0..SPANS_PER_TRACE).map(move |i| row(t, i, project_no, traces)))
            .collect();
        let batch = IngestBatch {
            projects: vec![project.to_owned()],
            resources: vec!["{}".into()],
            rows,
            ingested_by_user_id: 1,
            ingested_by_kind: "CREDENTIAL_KIND_SYSTEM_API_KEY",
            ..IngestBatch::default()
        };
        store.insert_batches(vec![ResolvedBatch { batch, project_ids: ids.clone() }]).await.expect("insert");
        trace += per_batch;
    }
    println!("filled {project}: {spans} spans in {:.1} s", started.elapsed().as_secs_f64());
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let spans = env_u64("ASHGATE_BENCH_SPANS", 1_000_000);
    let requests = env_u64("ASHGATE_BENCH_REQUESTS", 200);
    let fixture = GatewayFixture::start_with(false, |env| env).await;
    let backend = if fixture.collector.database.is_postgres() { "PostgreSQL" } else { "SQLite" };
    println!("read bench on {backend}: {spans} spans in project `bench`, {requests} requests per query");
    fill(&fixture.collector.store, "bench", 1, spans).await;
    fill(&fixture.collector.store, "noise", 2, spans / 10).await;

    let traces = spans / SPANS_PER_TRACE;
    let mid_trace = traces / 2;
    let mid_cursor = STANDARD.encode(format!("Span:{}", spans / 2));
    let day = |d: i64| {
        let secs = (START + d * 86_400 * 1_000_000_000) / 1_000_000_000;
        time_iso(secs)
    };
    let queries: Vec<(&str, String)> = vec![
        ("no filter", String::new()),
        ("trace_id (1 trace)", format!("trace_id={}", trace_hex(mid_trace, 1))),
        ("span_id", format!("span_id={}", span_hex(mid_trace, 3))),
        ("parent_id=null (10 %)", "parent_id=null".into()),
        ("parent_id=<span>", format!("parent_id={}", span_hex(mid_trace, 0))),
        ("name (5 %)", "name=step-7".into()),
        ("span_kind=LLM (25 %)", "span_kind=LLM".into()),
        ("span_kind=EMBEDDING (1 %)", "span_kind=EMBEDDING".into()),
        ("status_code=ERROR (2 %)", "status_code=ERROR".into()),
        ("span_kind=LLM & status_code=ERROR", "span_kind=LLM&status_code=ERROR".into()),
        ("attribute model (20 %)", "attribute=llm.model_name:gpt-4o".into()),
        ("attribute user.id (0.1 %)", "attribute=user.id:user-42".into()),
        ("start/end time (1 day of 30)", format!("start_time={}&end_time={}", day(10), day(11))),
        ("cursor, mid-project", format!("cursor={mid_cursor}")),
    ];
    let client = GatewayFixture::client();
    println!("\n| query | rows/page | requests | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|");
    let run = |name: &'static str, url: String| {
        let client = client.clone();
        async move {
            let mut times = Vec::with_capacity(requests as usize);
            let mut count = 0;
            let budget = Instant::now();
            for i in 0..requests + 5 {
                // A query that scans the whole project gets its budget, not hundreds of runs.
                if i >= 10 && budget.elapsed() > Duration::from_secs(20) {
                    break;
                }
                let started = Instant::now();
                let response = client.get(&url).send().await.expect("request");
                assert!(response.status().is_success(), "{name}: {}", response.status());
                let body: serde_json::Value = response.json().await.expect("json");
                if i >= 5 {
                    times.push(started.elapsed());
                }
                count = body["data"].as_array().map_or(0, Vec::len);
            }
            times.sort();
            let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
            println!("| {name} | {count} | {} | {p50:.1} | {p99:.1} |", times.len());
        }
    };
    for (name, query) in &queries {
        let sep = if query.is_empty() { "" } else { "&" };
        run(name, fixture.url(&format!("/v1/projects/bench/spans?limit=100{sep}{query}"))).await;
    }
    run("traces, by start time", fixture.url("/v1/projects/bench/traces?limit=100")).await;
    run("traces, by latency", fixture.url("/v1/projects/bench/traces?limit=100&sort=latency_ms")).await;
    run("traces, error=true", fixture.url("/v1/projects/bench/traces?limit=100&error=true")).await;
    fixture.stop().await;
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days-from-civil, no date crate needed).
fn time_iso(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

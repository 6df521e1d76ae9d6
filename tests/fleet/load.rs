//! The load the fleet runs under: OTLP/gRPC exporters that fail over between the two collectors
//! and retry what was refused (as an exporter behind a load balancer would), an OTLP/HTTP
//! exporter through the gateway, and probes with credentials that must never get in. Every
//! answer is recorded with its time; every acknowledged trace is remembered to be found in the
//! database afterwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::resource::v1::Resource;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use ashgate_testkit::collector::deps::prost::Message as _;
use ashgate_testkit::collector::deps::reqwest;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

/// Who answered: collector `0`/`1` over gRPC, or the gateway over HTTP.
pub type Target = usize;
/// [`Target`] of the gateway.
pub const GATEWAY: Target = 2;

/// Trace ids: a per-run prefix and a sequence number.
static NEXT_TRACE: AtomicU64 = AtomicU64::new(1);

/// A new, unique trace number.
pub fn next_trace() -> u64 {
    NEXT_TRACE.fetch_add(1, Ordering::Relaxed)
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// The 16 trace-id bytes of trace number `trace`.
fn trace_id(trace: u64) -> Vec<u8> {
    let mut id = vec![0xf1, 0xee, 0x70, 0x00, 0, 0, 0, 0];
    id.extend_from_slice(&trace.to_be_bytes());
    id
}

/// How the collector stores the trace id of trace number `trace` (lower-case hex).
pub fn trace_hex(trace: u64) -> String {
    trace_id(trace).iter().map(|b| format!("{b:02x}")).collect()
}

/// One export of trace `trace` with `spans` spans, in project `fleet`.
pub fn export_request(trace: u64, spans: u64) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: trace_id(trace),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: format!("fleet-span-{i}"),
            kind: 1,
            start_time_unix_nano: now + i * 1_000,
            end_time_unix_nano: now + i * 1_000 + 500,
            attributes: vec![kv("llm.model_name", "fleet-model"), kv("input.value", "hello fleet")],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("openinference.project.name", "fleet"), kv("service.name", "fleet-test")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// The exporters' deadline per call; past it they give up on that call and retry it, as OTLP
/// exporters do (the collector never answered, so nothing was acknowledged).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A lazily connecting gRPC channel to `url`.
pub fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .timeout(CLIENT_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy()
}

/// `request` with `authorization: Bearer <key>`.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// One answer.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// When it came.
    pub at: Instant,
    /// Who answered.
    pub target: Target,
    /// Accepted.
    pub ok: bool,
}

/// What the load saw.
#[derive(Default)]
pub struct Record {
    /// Acknowledged trace numbers with their span counts.
    pub acked: Mutex<HashMap<u64, u64>>,
    /// Every answer of the valid-key exporters, in order.
    pub events: Mutex<Vec<Event>>,
    /// Refusals by (target, what), e.g. `(0, "UNAVAILABLE")`, with one example message each.
    pub refusals: Mutex<BTreeMap<(Target, String), (u64, String)>>,
    /// Answers that break the contract: a non-retryable refusal of a valid key, a retry that
    /// never succeeded, or anything accepted from a bad credential.
    pub violations: Mutex<Vec<String>>,
    /// Exports refused to the bad-credential probes (they must all be).
    pub probes_refused: AtomicU64,
    /// Of those, the ones refused as UNAUTHENTICATED: judged by credential verification, not
    /// turned away (UNAVAILABLE, RESOURCE_EXHAUSTED) before a credential was looked at.
    pub probes_unauthenticated: AtomicU64,
}

impl Record {
    fn event(&self, target: Target, ok: bool) {
        self.events.lock().unwrap().push(Event { at: Instant::now(), target, ok });
    }

    fn refusal(&self, target: Target, what: String, message: String) {
        let mut refusals = self.refusals.lock().unwrap();
        let entry = refusals.entry((target, what)).or_insert((0, message));
        entry.0 += 1;
    }

    fn violation(&self, text: String) {
        eprintln!("VIOLATION: {text}");
        self.violations.lock().unwrap().push(text);
    }

    /// The first accepted answer from `target` at or after `since`.
    pub fn first_ok_after(&self, target: Target, since: Instant) -> Option<Instant> {
        self.events.lock().unwrap().iter().find(|e| e.target == target && e.ok && e.at >= since).map(|e| e.at)
    }

    /// Refusals of valid credentials between `from` and `to`, by target.
    pub fn refused_between(&self, from: Instant, to: Instant) -> [u64; 3] {
        let mut counts = [0; 3];
        for e in self.events.lock().unwrap().iter().filter(|e| !e.ok && e.at >= from && e.at < to) {
            counts[e.target] += 1;
        }
        counts
    }
}

/// gRPC codes an exporter may be answered with and retry: the service is there, but cannot take
/// this export now.
fn retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

/// What the load runs.
pub struct LoadConfig {
    /// gRPC exporters (each prefers collector `i % 2` and fails over to the other).
    pub grpc_exporters: usize,
    /// OTLP/HTTP exporters through the gateway.
    pub gateway_exporters: usize,
    /// Spans per export.
    pub spans_per_export: u64,
    /// A valid API key.
    pub key: String,
    /// Credentials that must never be accepted (a revoked key, a forged one).
    pub bad_keys: Vec<String>,
}

/// The running load.
pub struct Load {
    /// What it saw.
    pub record: Arc<Record>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts exporting to `collectors` (gRPC URLs) and to the gateway's `/v1/traces`.
    pub fn start(config: LoadConfig, collectors: [String; 2], gateway_traces_url: String) -> Self {
        let record = Arc::new(Record::default());
        let stop = Arc::new(AtomicBool::new(false));
        let channels = [channel(&collectors[0]), channel(&collectors[1])];
        let mut tasks = Vec::new();
        for i in 0..config.grpc_exporters {
            let exporter = GrpcExporter {
                clients: [
                    TraceServiceClient::new(channels[0].clone()),
                    TraceServiceClient::new(channels[1].clone()),
                ],
                preferred: i % 2,
                key: config.key.clone(),
                spans: config.spans_per_export,
                record: record.clone(),
                stop: stop.clone(),
            };
            tasks.push(tokio::spawn(exporter.run()));
        }
        let http = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().unwrap();
        for _ in 0..config.gateway_exporters {
            let exporter = GatewayExporter {
                http: http.clone(),
                url: gateway_traces_url.clone(),
                key: config.key.clone(),
                spans: config.spans_per_export,
                record: record.clone(),
                stop: stop.clone(),
            };
            tasks.push(tokio::spawn(exporter.run()));
        }
        for (i, key) in config.bad_keys.into_iter().enumerate() {
            let clients =
                [TraceServiceClient::new(channels[0].clone()), TraceServiceClient::new(channels[1].clone())];
            let (record, stop) = (record.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // Each probe alternates between the collectors.
                    let mut client = clients[(i + n) % 2].clone();
                    n += 1;
                    match client.export(with_key(export_request(next_trace(), 1), &key)).await {
                        Ok(_) => record.violation(format!("a bad credential was accepted (probe {i})")),
                        Err(status) if status.code() == Code::Unauthenticated || retryable(status.code()) => {
                            record.probes_refused.fetch_add(1, Ordering::Relaxed);
                            if status.code() == Code::Unauthenticated {
                                record.probes_unauthenticated.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // The collector it talks to was killed: the connection broke.
                        Err(_) => {}
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        Self { record, stop, tasks }
    }

    /// Stops the exporters (each finishes its current export and retries) and waits for them.
    pub async fn stop(mut self) -> Arc<Record> {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            task.await.unwrap();
        }
        self.record.clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // A failed test drops the load before the fleet: stop exporting into a dying fleet.
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Retry schedule: 20 ms doubling to 500 ms, for at most this long per export.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

struct GrpcExporter {
    clients: [TraceServiceClient<Channel>; 2],
    preferred: usize,
    key: String,
    spans: u64,
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
}

impl GrpcExporter {
    async fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let trace = next_trace();
            let request = export_request(trace, self.spans);
            let started = Instant::now();
            let mut backoff = Duration::from_millis(20);
            let mut target = self.preferred;
            loop {
                let answer = self.clients[target].export(with_key(request.clone(), &self.key)).await;
                match answer {
                    Ok(_) => {
                        self.record.event(target, true);
                        self.record.acked.lock().unwrap().insert(trace, self.spans);
                        break;
                    }
                    Err(status) => {
                        self.record.event(target, false);
                        let code = status.code();
                        let what = if retryable(code) || broken_connection(&status) {
                            format!("{code:?}")
                        } else if client_timeout(&status) {
                            "client timeout".to_owned()
                        } else {
                            self.record.violation(format!(
                                "collector-{} refused a valid key with {code:?}: {}",
                                target + 1,
                                status.message()
                            ));
                            format!("{code:?} (not retryable)")
                        };
                        self.record.refusal(target, what, status.message().to_owned());
                    }
                }
                if started.elapsed() > GIVE_UP_AFTER {
                    self.record.violation(format!("trace {trace} was never accepted in {GIVE_UP_AFTER:?}"));
                    break;
                }
                // Fail over to the other collector at once; back off once both refused.
                if target != self.preferred {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                target = 1 - target;
                if self.stop.load(Ordering::Relaxed) && started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
        }
    }
}

/// A call this client gave up on at its deadline.
fn client_timeout(status: &tonic::Status) -> bool {
    status.code() == Code::DeadlineExceeded
        || (status.code() == Code::Cancelled && status.message().to_ascii_lowercase().contains("timeout"))
}

/// A call that failed because the connection to a killed process broke mid-call (the server
/// never answered: nothing was acknowledged, an exporter retries it).
fn broken_connection(status: &tonic::Status) -> bool {
    let message = status.message().to_ascii_lowercase();
    matches!(status.code(), Code::Unknown | Code::Internal | Code::Cancelled)
        && (message.contains("transport")
            || message.contains("connection")
            || message.contains("broken pipe"))
}

struct GatewayExporter {
    http: reqwest::Client,
    url: String,
    key: String,
    spans: u64,
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
}

impl GatewayExporter {
    async fn run(self) {
        while !self.stop.load(Ordering::Relaxed) {
            let trace = next_trace();
            let body = export_request(trace, self.spans).encode_to_vec();
            let started = Instant::now();
            let mut backoff = Duration::from_millis(20);
            loop {
                let answer = self
                    .http
                    .post(&self.url)
                    .bearer_auth(&self.key)
                    .header("content-type", "application/x-protobuf")
                    .body(body.clone())
                    .send()
                    .await;
                match answer.as_ref().map(|r| r.status().as_u16()) {
                    Ok(200) => {
                        self.record.event(GATEWAY, true);
                        self.record.acked.lock().unwrap().insert(trace, self.spans);
                        break;
                    }
                    Ok(code @ (429 | 503)) => {
                        self.record.event(GATEWAY, false);
                        self.record.refusal(GATEWAY, code.to_string(), String::new());
                    }
                    Ok(code) => {
                        self.record.event(GATEWAY, false);
                        let text = match answer {
                            Ok(response) => response.text().await.unwrap_or_default(),
                            Err(_) => String::new(),
                        };
                        self.record
                            .violation(format!("the gateway answered a valid export with {code}: {text}"));
                        self.record.refusal(GATEWAY, format!("{code} (not retryable)"), text);
                    }
                    Err(error) if error.is_timeout() => {
                        self.record.event(GATEWAY, false);
                        self.record.refusal(GATEWAY, "client timeout".into(), error.to_string());
                    }
                    Err(error) => {
                        self.record.event(GATEWAY, false);
                        self.record.violation(format!("the gateway did not answer: {error:?}"));
                    }
                }
                if started.elapsed() > GIVE_UP_AFTER {
                    self.record.violation(format!("trace {trace} was never accepted by the gateway"));
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                if self.stop.load(Ordering::Relaxed) && started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
        }
    }
}

//! The fleet test: the topology of docker-compose.yml as separate OS processes of the `ashgate`
//! binary on loopback ports (identity-svc ×2 on one PostgreSQL and one Redis, collector-svc ×2,
//! a gateway in front of both), under load, through kills and restarts.
//!
//! PostgreSQL and Redis are the machine's software but private instances started by the test
//! (`ashgate_testkit::fleet`): the test restarts them, which it must not do to the servers every
//! other test of the suite shares.
//!
//! What it shows: traces go in through both collectors and the gateway, users sign in through
//! the gateway; a key deleted through one identity replica is refused by every collector within
//! one second; after kill -9 of an identity replica and of a collector, and a restart of
//! PostgreSQL and of Redis, each under load, exports are answered OK or refused retryably
//! (UNAVAILABLE / RESOURCE_EXHAUSTED / 503 / 429) and never accepted unauthenticated, every
//! acknowledged span is in the database, and the fleet serves again once the process is back;
//! every service reports health, readiness and metrics, logs JSON lines and stops gracefully.
//!
//! Figures (docs/PERFORMANCE.md, "Fleet"): the test prints them. With
//! `ASHGATE_FLEET_FIGURES=1` it runs longer and takes more samples:
//! `ASHGATE_FLEET_FIGURES=1 cargo test --release --test fleet -- --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod load;
mod probes;
mod redis_link;
mod redis_restart;
mod rotation;
mod verifier_race;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use ashgate_testkit::collector::deps::reqwest;
use ashgate_testkit::fleet::Fleet;
use futures::FutureExt as _;

use crate::load::{GATEWAY, Load, LoadConfig, Record};
use crate::probes::{
    create_member, create_system_key, delete_system_key, export_until_accepted, gateway_sign_in_retrying,
    identity_serves, metric, revocation_delays, wait_until,
};

/// Set to run the longer measurement for docs/PERFORMANCE.md.
const FIGURES_ENV: &str = "ASHGATE_FLEET_FIGURES";
/// The requirement: a revocation reaches every collector within this.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// identity-svc's count of credentials it verified for other services.
const VERIFIED_OK: &str = "ashgate_identity_rpc_calls_total{method=\"/ashgate.identity.v1.InternalService/VerifyCredential\",code=\"OK\"}";
const MEMBER_EMAIL: &str = "fleet-member@example.com";
const MEMBER_PASSWORD: &str = "fleet-password-1";

/// How much to do.
struct Scale {
    steady: Duration,
    revocation_samples: usize,
    grpc_exporters: usize,
    gateway_exporters: usize,
    spans_per_export: u64,
}

impl Scale {
    fn from_env() -> Self {
        if std::env::var(FIGURES_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
            Self {
                steady: Duration::from_secs(20),
                revocation_samples: 100,
                grpc_exporters: 8,
                gateway_exporters: 2,
                spans_per_export: 100,
            }
        } else {
            Self {
                steady: Duration::from_secs(3),
                revocation_samples: 4,
                grpc_exporters: 4,
                gateway_exporters: 1,
                spans_per_export: 50,
            }
        }
    }
}

/// What the run measured.
#[derive(Default)]
struct Figures {
    startup: Duration,
    stored_spans_per_sec: f64,
    revocations: Vec<Duration>,
    recoveries: Vec<(String, Duration)>,
    acked_spans: u64,
    bytes_per_span: f64,
    refusals: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_survives_kills_and_restarts_without_losing_an_acknowledged_span() {
    let scale = Scale::from_env();
    let started = Instant::now();
    let binary = Path::new(env!("CARGO_BIN_EXE_ashgate"));
    let mut fleet = tokio::task::spawn_blocking(move || Fleet::start(binary)).await.unwrap().unwrap();
    let mut figures = Figures { startup: started.elapsed(), ..Figures::default() };
    let outcome = AssertUnwindSafe(scenario(&mut fleet, &scale, &mut figures)).catch_unwind().await;
    if let Err(panic) = outcome {
        eprintln!("fleet logs (last lines):\n{}", fleet.log_tails(30));
        std::panic::resume_unwind(panic);
    }
    print_figures(&figures, &scale, started.elapsed());
}

/// Blocking fixture work (spawning and waiting for a process) on this runtime's worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn get_status(url: &str) -> u16 {
    reqwest::get(url).await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// A key with a valid shape whose signature was tampered with.
fn forged(key: &str) -> String {
    let mut forged = key.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    forged
}

fn assert_bounded(what: &str, delays: &[Duration]) {
    assert!(
        delays.iter().all(|delay| *delay <= REVOCATION_BOUND),
        "{what}: a collector accepted a deleted key for longer than {REVOCATION_BOUND:?} (collector-1, collector-2): {delays:?}"
    );
}

async fn scenario(fleet: &mut Fleet, scale: &Scale, figures: &mut Figures) {
    let identities = [fleet.identity_url(0), fleet.identity_url(1)];
    let collectors = [fleet.collector_grpc_url(0), fleet.collector_grpc_url(1)];
    let gateway = fleet.gateway_url("");
    let reliable = "ashgate_identity_revocations_reliable";

    // Operations: health, readiness and metrics of every service.
    for i in 0..2 {
        assert_eq!(get_status(&fleet.identity_ops_url(i, "/healthz")).await, 200);
        let metrics = fleet.identity_ops_url(i, "/metrics");
        wait_until("identity follows Redis", Duration::from_secs(10), || async {
            metric(&metrics, reliable).await == Some(1.0)
        })
        .await;
        assert_eq!(get_status(&fleet.identity_ops_url(i, "/readyz")).await, 200);
        assert_eq!(get_status(&fleet.collector_http_url(i, "/readyz")).await, 200);
    }
    let gateway_ready = fleet.gateway_url("/readyz");
    wait_until("gateway ready", Duration::from_secs(10), || async {
        get_status(&gateway_ready).await == 200
    })
    .await;

    // A user signs in through the gateway; the load's keys come from both identity replicas.
    create_member(&identities[1], MEMBER_EMAIL, MEMBER_PASSWORD).await;
    gateway_sign_in_retrying(&gateway, MEMBER_EMAIL, MEMBER_PASSWORD).await;
    let (_, key) = create_system_key(&identities[0], "fleet-load").await;
    let (revoked_id, revoked) = create_system_key(&identities[1], "fleet-revoked").await;
    delete_system_key(&identities[0], revoked_id).await;
    for collector in &collectors {
        export_until_accepted(collector, &key).await;
    }
    let load = Load::start(
        LoadConfig {
            grpc_exporters: scale.grpc_exporters,
            gateway_exporters: scale.gateway_exporters,
            spans_per_export: scale.spans_per_export,
            key: key.clone(),
            bad_keys: vec![revoked, forged(&key)],
        },
        collectors.clone(),
        fleet.gateway_url("/v1/traces"),
    );
    let record = load.record.clone();

    // Steady state: stored spans per second with two collectors (and the gateway).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rows_before, window) = (fleet.postgres.span_total().await.unwrap(), Instant::now());
    tokio::time::sleep(scale.steady).await;
    let rows_after = fleet.postgres.span_total().await.unwrap();
    figures.stored_spans_per_sec = (rows_after - rows_before) as f64 / window.elapsed().as_secs_f64();
    for target in [0, 1, GATEWAY] {
        assert!(record.first_ok_after(target, window).is_some(), "target {target} accepted nothing");
    }

    // Revocation through either replica reaches both collectors within a second.
    for n in 0..scale.revocation_samples {
        let delays = revocation_delays(&identities[n % 2], &collectors).await;
        assert_bounded("revocation across replicas", &delays);
        figures.revocations.extend(delays);
    }
    eprintln!("fleet: steady state and {} revocations checked", figures.revocations.len());

    kill_identity(fleet, figures, &record).await;
    kill_collector(fleet, figures, &record).await;
    restart_redis(fleet, figures, &record).await;
    restart_postgres(fleet, figures, &record).await;

    // Both replicas verify for the collectors and the gateway, identity-1 too since its restart
    // (its counters started again at zero): it is back in their rotation.
    for i in 0..2 {
        let url = fleet.identity_ops_url(i, "/metrics");
        let verified = metric(&url, VERIFIED_OK).await.unwrap_or(0.0);
        assert!(verified > 0.0, "identity-{} answered no verification: {verified}", i + 1);
    }

    // Nothing acknowledged is missing; nothing unauthenticated got in.
    let record = load.stop().await;
    let violations = record.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{} contract violations: {violations:#?}", violations.len());
    assert!(
        record.probes_refused.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the bad-credential probes ran"
    );
    assert!(
        record.probes_unauthenticated.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no bad-credential probe was refused as UNAUTHENTICATED ({} refused, all as unavailable or \
         exhausted): credential verification never judged one",
        record.probes_refused.load(std::sync::atomic::Ordering::Relaxed)
    );
    let stored = fleet.postgres.span_counts().await.unwrap();
    let acked = record.acked.lock().unwrap().clone();
    let missing: Vec<_> = acked
        .iter()
        .filter(|(trace, spans)| stored.get(&load::trace_hex(**trace)) != Some(&(**spans as i64)))
        .collect();
    assert!(missing.is_empty(), "{} acknowledged exports missing or incomplete: {missing:?}", missing.len());
    figures.acked_spans = acked.values().sum();
    let rows = fleet.postgres.span_total().await.unwrap();
    figures.bytes_per_span = fleet.postgres.span_table_bytes().await.unwrap() as f64 / rows.max(1) as f64;
    figures.refusals = format!("{:?}", record.refusals.lock().unwrap());

    // Graceful shutdown, front to back; every log line was JSON.
    for service in fleet.services_mut() {
        let status = blocking(|| service.terminate(Duration::from_secs(30))).unwrap();
        assert!(status.success(), "{} exited with {status} after SIGTERM", service.name);
        let log = std::fs::read_to_string(service.log_path()).unwrap();
        assert!(!log.is_empty(), "{} logged nothing", service.name);
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
            assert!(parsed.is_ok(), "{}: not a JSON log line: {line}", service.name);
        }
    }
}

/// kill -9 identity-1 under load: verification and revocation go on through identity-2 (the
/// collectors' revocation streams move there), sign-in through the gateway too; then it
/// restarts and serves again.
async fn kill_identity(fleet: &mut Fleet, figures: &mut Figures, record: &Record) {
    let identities = [fleet.identity_url(0), fleet.identity_url(1)];
    let collectors = [fleet.collector_grpc_url(0), fleet.collector_grpc_url(1)];
    let killed = Instant::now();
    fleet.identities[0].kill();
    let delays = revocation_delays(&identities[1], &collectors).await;
    assert_bounded("revocation with identity-1 dead", &delays);
    figures.revocations.extend(delays);
    let sign_in = gateway_sign_in_retrying(&fleet.gateway_url(""), MEMBER_EMAIL, MEMBER_PASSWORD).await;
    figures.recoveries.push(("identity-1 killed: gateway sign-in answered after".into(), sign_in));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = record.refused_between(killed, Instant::now());
    eprintln!("fleet: identity-1 killed; refusals since (collector-1, collector-2, gateway): {refused:?}");

    let restarted = Instant::now();
    blocking(|| fleet.identities[0].start()).unwrap();
    let url = identities[0].clone();
    wait_until("identity-1 serves again", Duration::from_secs(30), || identity_serves(&url)).await;
    figures.recoveries.push(("identity-1 restarted: serving after".into(), restarted.elapsed()));
    let metrics = fleet.identity_ops_url(0, "/metrics");
    wait_until("identity-1 follows Redis again", Duration::from_secs(10), || async {
        metric(&metrics, "ashgate_identity_revocations_reliable").await == Some(1.0)
    })
    .await;
    let delays = revocation_delays(&identities[0], &collectors).await;
    assert_bounded("revocation through the restarted identity-1", &delays);
    figures.revocations.extend(delays);
}

/// kill -9 collector-2 under load: exporters fail over to collector-1, the gateway forwards
/// there; then it restarts and accepts again.
async fn kill_collector(fleet: &mut Fleet, figures: &mut Figures, record: &Record) {
    let killed = Instant::now();
    fleet.collectors[1].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for target in [0, GATEWAY] {
        assert!(
            record.first_ok_after(target, killed).is_some(),
            "target {target} accepted nothing after the kill"
        );
    }
    let refused = record.refused_between(killed, Instant::now());
    eprintln!("fleet: collector-2 killed; refusals since (collector-1, collector-2, gateway): {refused:?}");
    let restarted = Instant::now();
    blocking(|| fleet.collectors[1].start()).unwrap();
    let took = wait_until("collector-2 accepts again", Duration::from_secs(30), || async {
        record.first_ok_after(1, restarted).is_some()
    })
    .await;
    figures.recoveries.push(("collector-2 restarted: accepting exports after".into(), took));
}

/// Redis killed and restarted under load: the identity replicas notice, verifiers stop caching,
/// so a revocation still holds within a second; sign-in still works; they resubscribe.
async fn restart_redis(fleet: &mut Fleet, figures: &mut Figures, record: &Record) {
    let identities = [fleet.identity_url(0), fleet.identity_url(1)];
    let collectors = [fleet.collector_grpc_url(0), fleet.collector_grpc_url(1)];
    let metrics = [fleet.identity_ops_url(0, "/metrics"), fleet.identity_ops_url(1, "/metrics")];
    let reliable = "ashgate_identity_revocations_reliable";
    let down = Instant::now();
    fleet.redis.kill();
    for url in &metrics {
        wait_until("identity notices Redis is gone", Duration::from_secs(10), || async {
            metric(url, reliable).await == Some(0.0)
        })
        .await;
    }
    let delays = revocation_delays(&identities[0], &collectors).await;
    assert_bounded("revocation while Redis is down", &delays);
    figures.revocations.extend(delays);
    gateway_sign_in_retrying(&fleet.gateway_url(""), MEMBER_EMAIL, MEMBER_PASSWORD).await;
    assert!(record.first_ok_after(0, down).is_some() && record.first_ok_after(1, down).is_some());

    blocking(|| fleet.redis.start_server()).unwrap();
    let up = Instant::now();
    for url in &metrics {
        wait_until("identity resubscribes to Redis", Duration::from_secs(20), || async {
            metric(url, reliable).await == Some(1.0)
        })
        .await;
    }
    figures
        .recoveries
        .push(("Redis restarted: both identity replicas following it after".into(), up.elapsed()));
    let delays = revocation_delays(&identities[1], &collectors).await;
    assert_bounded("revocation after Redis is back", &delays);
    figures.revocations.extend(delays);
}

/// PostgreSQL stopped (immediate, as a crash) and started again under load: exports are refused
/// retryably while it is down, accepted again once it is back.
async fn restart_postgres(fleet: &mut Fleet, figures: &mut Figures, record: &Record) {
    let down = Instant::now();
    blocking(|| fleet.postgres.stop_immediate()).unwrap();
    // Readiness follows the database: identity-svc and collector-svc leave the rotation.
    wait_all_ready(fleet, 503, "turns 503").await;
    blocking(|| fleet.postgres.start_server()).unwrap();
    let up = Instant::now();
    eprintln!("fleet: PostgreSQL down for {:?}", up - down);
    for (target, name) in [(0, "collector-1"), (1, "collector-2"), (GATEWAY, "gateway")] {
        let took = wait_until(
            &format!("{name} accepts after PostgreSQL is back"),
            Duration::from_secs(30),
            || async { record.first_ok_after(target, up).is_some() },
        )
        .await;
        figures.recoveries.push((format!("PostgreSQL restarted: {name} accepting after"), took));
    }
    let sign_in = gateway_sign_in_retrying(&fleet.gateway_url(""), MEMBER_EMAIL, MEMBER_PASSWORD).await;
    figures
        .recoveries
        .push(("PostgreSQL restarted: gateway sign-in after".into(), up.elapsed().max(sign_in)));
    let collectors = [fleet.collector_grpc_url(0), fleet.collector_grpc_url(1)];
    let delays = revocation_delays(&fleet.identity_url(0), &collectors).await;
    assert_bounded("revocation after PostgreSQL is back", &delays);
    figures.revocations.extend(delays);
    wait_all_ready(fleet, 200, "ready again").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Waits until `/readyz` of every identity replica and collector answers `status`.
async fn wait_all_ready(fleet: &Fleet, status: u16, what: &str) {
    let urls: Vec<String> = (0..2)
        .flat_map(|i| [fleet.identity_ops_url(i, "/readyz"), fleet.collector_http_url(i, "/readyz")])
        .collect();
    let labels: Vec<String> = urls.iter().map(|url| format!("{url} {what}")).collect();
    let waits = urls.iter().zip(&labels).map(|(url, label)| {
        wait_until(label, Duration::from_secs(30), move || async move { get_status(url).await == status })
    });
    futures::future::join_all(waits).await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn print_figures(figures: &Figures, scale: &Scale, total: Duration) {
    let mut revocations = figures.revocations.clone();
    revocations.sort();
    eprintln!("\n== fleet figures ==");
    eprintln!("fleet start (PostgreSQL initdb + Redis + 5 services): {:.1} s", figures.startup.as_secs_f64());
    eprintln!(
        "stored spans/s, 2 collectors + gateway ({} gRPC exporters, {} via gateway, {} spans/export, {:?} window): {:.0}",
        scale.grpc_exporters,
        scale.gateway_exporters,
        scale.spans_per_export,
        scale.steady,
        figures.stored_spans_per_sec
    );
    eprintln!(
        "revocation, delete through one replica -> refused by both collectors ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        revocations.len(),
        percentile(&revocations, 0.5).as_secs_f64() * 1e3,
        percentile(&revocations, 0.99).as_secs_f64() * 1e3,
        revocations.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    for (what, took) in &figures.recoveries {
        eprintln!("{what}: {:.2} s", took.as_secs_f64());
    }
    eprintln!("acknowledged spans, all found in the database: {}", figures.acked_spans);
    eprintln!("PostgreSQL bytes per stored span (table, indexes, TOAST): {:.0}", figures.bytes_per_span);
    eprintln!("retryable refusals seen (target, code) -> (count, example): {}", figures.refusals);
    eprintln!("total test time: {:.1} s", total.as_secs_f64());
}

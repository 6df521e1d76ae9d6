//! SIGKILL the collector (a child OS process) in the middle of a load: every export it
//! acknowledged must be in the database afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ashgate_testkit::collector::deps::ashgate_collector;
use ashgate_runtime::env::Env;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use ashgate_testkit::collector::deps::sqlx;
use ashgate_testkit::collector::{CollectorProcess, TestDatabase, free_port};
use tokio::sync::Mutex;

use crate::{export_request, spans, trace_hex};

const CHILD_ENV: &str = "ASHGATE_COLLECTOR_CHILD";
const CHILD_TEST: &str = "kill::collector_child_process";

/// Not a test: the entry point of the child process the kill test starts (this same binary,
/// re-executed), running exactly what the `collector-svc` binary runs.
#[test]
#[ignore = "child process entry point for kill_mid_load_loses_no_acknowledged_span"]
fn collector_child_process() {
    if std::env::var(CHILD_ENV).is_ok() {
        let code = ashgate_collector::run_process(&Env::from_process());
        std::process::exit(if code == std::process::ExitCode::SUCCESS { 0 } else { 1 });
    }
}

fn spawn_child(database: &TestDatabase) -> CollectorProcess {
    let exe = std::env::current_exe().unwrap();
    let env = [
        (CHILD_ENV, "1".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
        ("ASHGATE_SPANS_DATABASE_URL", database.url.expose().to_owned()),
        ("PHOENIX_GRPC_PORT", free_port().to_string()),
        ("ASHGATE_OTLP_HTTP_PORT", free_port().to_string()),
    ];
    CollectorProcess::spawn(&exe, &[CHILD_TEST, "--exact", "--ignored", "--nocapture"], &env).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mid_load_loses_no_acknowledged_span() {
    let database = TestDatabase::fresh().await.unwrap();
    let mut child = spawn_child(&database);
    let endpoint = format!("http://{}", child.grpc_addr);
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for task in 0..8_u64 {
        let (acked, stop, endpoint) = (acked.clone(), stop.clone(), endpoint.clone());
        load.push(tokio::spawn(async move {
            let Ok(mut client) = TraceServiceClient::connect(endpoint).await else { return };
            for seq in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let trace = (task + 1) * 1_000_000 + seq;
                match client.export(export_request(Some("kill"), spans(trace, 100, 1_000))).await {
                    Ok(_) => acked.lock().await.push(trace),
                    Err(_) => return,
                }
            }
        }));
    }
    let started = Instant::now();
    while acked.lock().await.len() < 300 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Kill while the load generator is still sending.
    child.kill();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= 100, "only {} exports acknowledged before the kill", acked.len());

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database.url.expose()).await.unwrap();
    let counts: Vec<(String, i64)> = sqlx::query_as("SELECT trace_id, COUNT(*) FROM spans GROUP BY trace_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    let counts: std::collections::HashMap<String, i64> = counts.into_iter().collect();
    let missing: Vec<_> = acked.iter().filter(|t| counts.get(&trace_hex(**t)) != Some(&100)).collect();
    let stored: i64 = counts.values().sum();
    eprintln!("acknowledged {} spans, stored {stored} spans", acked.len() * 100);
    assert!(missing.is_empty(), "{} acknowledged exports missing or incomplete: {missing:?}", missing.len());
    assert!(stored >= acked.len() as i64 * 100);

    // The database is usable again after the kill.
    let mut restarted = spawn_child(&database);
    let mut client = TraceServiceClient::connect(format!("http://{}", restarted.grpc_addr)).await.unwrap();
    client.export(export_request(Some("kill"), spans(1, 10, 1_000))).await.unwrap();
    assert!(restarted.terminate().unwrap().success());
}

//! collector-svc: authenticated OTLP trace ingestion (gRPC on `PHOENIX_GRPC_PORT`, HTTP on
//! `ASHGATE_OTLP_HTTP_PORT`) that answers an export only after its spans are committed, says
//! "retry later" instead of buffering without bound, and serves the stored spans back over gRPC.
//!
//! The modules follow an export, top to bottom:
//! [`receive`] (OTLP/gRPC and OTLP/HTTP, auth, decode slots, body deadlines) →
//! [`decode`] (protobuf or JSON to validated rows) →
//! [`pipeline`] (admission, the bounded queue of span permits, the writer that commits many
//! exports per transaction, `ON CONFLICT DO NOTHING`, and only then acknowledges) →
//! [`store`] (SQLite or PostgreSQL) → [`query`] (the span read service).
//! Around them: [`config`], [`auth`], [`error`], [`metrics`], and the wiring in `server`.

pub mod auth;
pub mod config;
pub mod decode;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod query;
pub mod receive;
mod server;
pub mod store;

use std::process::ExitCode;

use ashgate_identity_client::env::Env;

pub use config::{CollectorConfig, DatabaseUrl, WriterHold};
pub use error::Error;
pub use server::{Collector, serve};

/// The verifier `config` asks for: identity-svc when auth is enabled, else everyone is anonymous.
pub fn verifier_for(config: &CollectorConfig) -> Result<auth::CredentialVerifier, Error> {
    if config.auth_enabled {
        auth::CredentialVerifier::connect(config.identity.clone())
            .map_err(|e| Error::Startup(format!("cannot reach identity-svc: {e}")))
    } else {
        Ok(auth::CredentialVerifier::disabled())
    }
}

/// The whole process: read the environment, log to stderr, serve until SIGINT or SIGTERM.
/// The `collector-svc` binary is this function; tests and benchmarks run it in child processes.
pub fn run_process(env: &Env) -> ExitCode {
    if env.string("MALLOC_ARENA_MAX").is_none() {
        limit_malloc_arenas();
    }
    ashgate_identity_client::process::init_tracing();
    let config = match CollectorConfig::from_env(env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("collector-svc: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("collector-svc: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let verifier = verifier_for(&config)?;
        let collector = Collector::bind(config, verifier).await?;
        // Machine-readable line for supervisors and tests that start us on port 0.
        println!("collector-svc listening grpc={} http={}", collector.grpc_addr(), collector.http_addr());
        collector.run(ashgate_identity_client::process::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("collector-svc: {error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives threads their own malloc arenas (up to 8 per core) and keeps freed memory in
/// them, so bodies decoded on many worker and blocking threads leave RSS far above what is live.
/// Two arenas keep RSS close to the bounded working set; `MALLOC_ARENA_MAX` still overrides.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning; called before the runtime starts threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

//! What every ashgate service runs on, whichever process hosts it: [`run`] (the one way a
//! service process starts and stops), Phoenix-style environment parsing ([`env`]), secrets
//! ([`secret`]), TLS files ([`tls`]), logging and signals ([`process`]), the HTTP server loop
//! ([`http_server`]), the gRPC connection cap ([`incoming`]) and request metrics ([`metrics`]).
//!
//! identity-svc, collector-svc, the gateway and the all-in-one binary depend on this crate; the
//! identity client (`ashgate-identity-client`) keeps only what a client of identity needs.

pub mod env;
pub mod http_server;
pub mod incoming;
pub mod metrics;
pub mod process;
pub mod secret;
pub mod tls;

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

/// Completes when the process is asked to stop (SIGINT or SIGTERM).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs one service process: logging, then its configuration (a bad value stops start-up with
/// exit code 2 and one line, `<name>: <variable>: <rule>`), then a multi-thread runtime in which
/// `serve` runs until it returns, which it does after the shutdown signal it is given has fired
/// and its work is drained. A serving error is one line and exit code 1.
pub fn run<C, E, F, Fut, S>(name: &str, config: Result<C, E>, serve: F) -> ExitCode
where
    E: Display,
    F: FnOnce(C, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), S>>,
    S: Display,
{
    process::init_tracing();
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, Box::pin(process::shutdown_signal()))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

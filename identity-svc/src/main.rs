//! identity-svc on its own (`ashgate identity` does the same).

use std::process::ExitCode;

use ashgate_identity::IdentityConfig;
use ashgate_identity_client::env::Env;
use ashgate_identity_client::process::{init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let config = match IdentityConfig::from_env(&Env::from_process())
        .and_then(IdentityConfig::require_internal_token)
    {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match ashgate_identity::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("identity-svc: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `ashgate`: the all-in-one binary (every service in one process on the embedded default),
//! each service on its own, and operator commands.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use ashgate_identity::secret::Secret;
use ashgate_identity::{Identity, IdentityConfig};
use ashgate_identity_client::env::Env;
use ashgate_identity_client::process::{init_tracing, shutdown_signal};
use clap::{Parser, Subcommand};

/// Authentication for an LLM-observability trace platform, compatible with Arize Phoenix.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process (the default).
    Serve,
    /// Run identity-svc alone (needs ASHGATE_INTERNAL_TOKEN when auth is enabled).
    Identity,
    /// Manage users from the command line.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set a local user's password; the new password is read from standard input.
    ResetPassword {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// Make the user choose another password at next sign-in.
        #[arg(long)]
        must_change: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let env = Env::from_process();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve_all(&env).await,
        Command::Identity => {
            match IdentityConfig::from_env(&env).and_then(IdentityConfig::require_internal_token) {
                Ok(config) => ashgate_identity::run(config, shutdown_signal()).await,
                Err(e) => Err(anyhow::anyhow!(e)),
            }
        }
        Command::Users { command: UsersCommand::ResetPassword { email, must_change } } => {
            reset_password(&env, &email, must_change).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ashgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every service in one process on the embedded default.
async fn serve_all(env: &Env) -> anyhow::Result<()> {
    let mut config = IdentityConfig::from_env(env)?;
    if config.internal_token.is_none() {
        // In one process the services share a fresh random credential nobody else knows.
        config.internal_token = Some(Secret::new(ashgate_identity::token::random_token(32)));
    }
    tracing::info!(auth = config.auth_enabled, "starting ashgate");
    ashgate_identity::run(config, shutdown_signal()).await
}

async fn reset_password(env: &Env, email: &str, must_change: bool) -> anyhow::Result<()> {
    let config = IdentityConfig::from_env(env)?;
    eprint!("New password for {email}: ");
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the new password from standard input")?;
    let password = Secret::new(password.trim_end_matches(['\r', '\n']));
    let identity = Identity::start(config).await?;
    let user = identity.set_password_offline(email, &password, must_change).await?;
    identity.shutdown().await;
    eprintln!("Password of {} ({}) changed; their sessions were ended.", user.username, user.email);
    Ok(())
}

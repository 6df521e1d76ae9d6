//! `ashgate`: the all-in-one binary (every service in one process on the embedded default),
//! each service on its own, and operator commands.

use std::convert::Infallible;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use ashgate_identity::secret::Secret;
use ashgate_identity::{Identity, IdentityConfig, IdentityServer};
use ashgate_runtime::Shutdown;
use ashgate_runtime::env::Env;
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
    /// Run identity-svc alone (needs ASHGATE_INTERNAL_TOKEN and ASHGATE_GATEWAY_TOKEN when auth is enabled).
    Identity,
    /// Run collector-svc alone (OTLP ingestion; finds identity-svc at ASHGATE_IDENTITY_URL).
    Collector,
    /// Run the gateway alone (HTTP on PHOENIX_PORT; finds the others by ASHGATE_* URLs).
    Gateway,
    /// Manage users from the command line.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Inspect the signing secrets (PHOENIX_SECRET, ASHGATE_PREVIOUS_SECRETS).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// How many live sessions and API keys depend on each configured secret (ids, never secrets).
    Status,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            ashgate_runtime::run("ashgate", Ok::<_, Infallible>(()), |(), shutdown| async move {
                serve_all(&env, shutdown).await
            })
        }
        Command::Identity => ashgate_identity::run_process(&env),
        Command::Collector => ashgate_collector::run_process(&env),
        Command::Gateway => ashgate_gateway::run_process(&env),
        Command::Users { command: UsersCommand::ResetPassword { email, must_change } } => {
            ashgate_runtime::run("ashgate", Ok::<_, Infallible>(()), |(), _| async move {
                reset_password(&env, &email, must_change).await
            })
        }
        Command::Secrets { command: SecretsCommand::Status } => {
            ashgate_runtime::run("ashgate", Ok::<_, Infallible>(()), |(), _| async move {
                secrets_status(&env).await
            })
        }
    }
}

/// Every service in one process on the embedded default: identity-svc, collector-svc and the
/// gateway, each on its own port, wired to each other over loopback gRPC as in a fleet.
async fn serve_all(env: &Env, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut identity_config = IdentityConfig::from_env(env)?;
    let internal_token = match &identity_config.internal_token {
        Some(token) => token.expose().to_owned(),
        None => {
            // In one process the services share a fresh random credential nobody else knows.
            let token = ashgate_identity::token::random_token(32);
            identity_config.internal_token = Some(Secret::new(token.as_str()));
            token
        }
    };
    let gateway_token = match &identity_config.gateway_token {
        Some(token) => token.expose().to_owned(),
        None => {
            let token = ashgate_identity::token::random_token(32);
            identity_config.gateway_token = Some(Secret::new(token.as_str()));
            token
        }
    };
    let mut collector_config = ashgate_collector::CollectorConfig::from_env(env)?;
    let mut gateway_config = ashgate_gateway::GatewayConfig::from_env(env)?;
    let auth = identity_config.auth_enabled;

    let identity = Identity::start(identity_config.clone()).await?;
    let identity_server = IdentityServer::bind(identity.clone(), identity_config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (ASHGATE_IDENTITY_PORT)", identity_config.listen))?;
    // Over TLS when identity-svc is configured for it (its certificate must name 127.0.0.1).
    let scheme = if identity_config.tls.is_some() { "https" } else { "http" };
    let identity_url = format!("{scheme}://{}", identity_server.local_addr()?);

    collector_config.identity.identity_urls = vec![identity_url.clone()];
    collector_config.identity.internal_token = Some(internal_token.clone());
    let verifier = ashgate_collector::verifier_for(&collector_config)?;
    let collector = ashgate_collector::Collector::bind(collector_config, verifier.clone()).await?;

    gateway_config.identity_urls = vec![identity_url.clone()];
    gateway_config.internal_token = Some(ashgate_gateway::config::Secret::new(internal_token));
    gateway_config.gateway_token = Some(ashgate_gateway::config::Secret::new(gateway_token));
    gateway_config.collector_grpc_urls = vec![format!("http://{}", collector.grpc_addr())];
    gateway_config.collector_http_urls = vec![format!("http://{}", collector.http_addr())];
    let gateway = ashgate_gateway::Gateway::connect(gateway_config).await?;

    let gateway_addr = gateway.local_addr()?;
    println!(
        "ashgate listening: http://{gateway_addr} (sign-in and REST), OTLP gRPC {} and HTTP {}, identity {identity_url}",
        collector.grpc_addr(),
        collector.http_addr()
    );
    if auth {
        println!("sign in at http://{gateway_addr}/login");
    } else {
        println!("authentication is disabled (PHOENIX_ENABLE_AUTH=false)");
    }

    // One signal stops all three; each finishes what it was doing.
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let until_stopped = |stop: &tokio::sync::broadcast::Sender<()>| {
        let mut receiver = stop.subscribe();
        async move {
            let _ = receiver.recv().await;
        }
    };
    let identity_task = tokio::spawn(identity_server.serve(until_stopped(&stop)));
    let collector_task = tokio::spawn(collector.run(until_stopped(&stop)));
    let gateway_task = tokio::spawn(gateway.serve(until_stopped(&stop)));
    shutdown.await;
    let _ = stop.send(());
    // The gateway and the collector depend on identity-svc: stop them first.
    gateway_task.await??;
    collector_task.await??;
    identity_task.await??;
    identity.shutdown().await;
    Ok(())
}

async fn reset_password(env: &Env, email: &str, must_change: bool) -> anyhow::Result<()> {
    let config = IdentityConfig::from_env(env)?;
    if std::io::stdin().is_terminal() {
        eprint!("New password for {email}: ");
    }
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

/// `ashgate secrets status`: the same configuration and database as the server, read only
/// (beyond bringing the schema up to date).
async fn secrets_status(env: &Env) -> anyhow::Result<()> {
    let config = IdentityConfig::from_env(env)?;
    if config.secret.is_none() {
        anyhow::bail!("PHOENIX_SECRET: is not set, so nothing is signed");
    }
    let store = ashgate_identity::store::Store::connect(&config.database_url).await?;
    let now = ashgate_identity::identity::now_ms();
    let status = ashgate_identity::rotation::SecretStatus::read(&store, &config, now).await;
    store.close().await;
    print!("{}", status?.render());
    Ok(())
}

//! collector-svc: OTLP trace ingestion. Configuration comes from the environment (see
//! `CollectorConfig`); a bad value stops start-up with one line naming the variable.

fn main() -> std::process::ExitCode {
    ashgate_collector::run_process(&ashgate_runtime::env::Env::from_process())
}

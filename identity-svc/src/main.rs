//! identity-svc on its own (`ashgate identity` does the same).

fn main() -> std::process::ExitCode {
    ashgate_identity::run_process(&ashgate_runtime::env::Env::from_process())
}

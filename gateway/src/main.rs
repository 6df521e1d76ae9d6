//! `gateway`: ashgate's HTTP front door on its own (see the crate docs).

fn main() -> std::process::ExitCode {
    ashgate_gateway::run_process(&ashgate_runtime::env::Env::from_process())
}

//! `faas-server` (installed as `build/bin/server`): one command starts the
//! load balancer, the HTTP gateway, the Server and its worker processes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Nothing this process inherited reaches a worker, compiler or sandbox.
    faas_worker::fds::seal_inherited();
    // Invalid flags (an unknown strategy, a bad weight) exit 2 with clap's
    // message naming the value.
    let mut cli = faas_server::Cli::parse();
    // Replicas sharing a store label their lines with their name.
    let label = (cli.store.is_some() || cli.replica_name.is_some()).then(|| cli.replica());
    faas_logging::init_labelled("SERVER", label);
    if let Err(err) = faas_server::protect_secrets(&mut cli) {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    match faas_server::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

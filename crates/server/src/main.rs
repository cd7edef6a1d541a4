//! `faas-server` (installed as `build/bin/server`): one command starts the
//! load balancer, the HTTP gateway, the Server and its worker processes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = faas_server::Cli::parse();
    faas_logging::init("SERVER");
    if let Err(err) = cli.strategy() {
        eprintln!("error: {err}");
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

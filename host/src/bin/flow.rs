//! `flow`: the FNUA command-line client (see `fnaa_host::flow_cli`).

use std::process::ExitCode;

use clap::Parser as _;
use fnaa_host::flow_cli::cli::Cli;
use fnaa_host::flow_cli::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("flow: cannot start: {error}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    match runtime.block_on(fnaa_host::flow_cli::run::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("flow: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

//! `fnaa`: the FNAA host and its operator commands.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fnaa_host::cmd;

/// The FNAA host of the open network for event streams.
#[derive(Debug, Parser)]
#[command(name = "fnaa", version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the host (FNAP server, DNS, brokers, pipelines).
    Serve {
        /// Configuration file; without it the host runs on embedded defaults.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Checks and runs plugins offline.
    #[command(subcommand)]
    Plugin(cmd::plugin::PluginCommand),
    /// Manages accounts in the store (while the host is stopped).
    User {
        /// Configuration file whose `[store] path` to use.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cmd::user::UserCommand,
    },
    /// Inspects the flows in the store (while the host is stopped).
    Flows {
        /// Configuration file whose `[store] path` to use.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cmd::flows::FlowsCommand,
    },
    /// Works with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints a complete `fnaa.toml`: every setting with its documentation,
    /// commented out at its default.
    Example,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    fnaa_host::telemetry::init(cli.log_json);
    let result = match cli.command {
        Command::Serve { config } => cmd::serve::run(config.as_deref()),
        Command::Plugin(command) => cmd::plugin::run(command),
        Command::User { config, command } => cmd::user::run(config.as_deref(), command),
        Command::Flows { config, command } => cmd::flows::run(config.as_deref(), command),
        Command::Config(ConfigCommand::Example) => std::io::stdout()
            .write_all(fnaa_host::config_example::example().as_bytes())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("fnaa: {error:#}");
            ExitCode::FAILURE
        }
    }
}

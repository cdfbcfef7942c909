//! `fnaa`: the FNAA host and its operator commands.

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
    /// Manages accounts: on the running host through its admin socket,
    /// else in its store file.
    User {
        /// Configuration file of the host (`[grpc] socket`, `[store] path`).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cmd::user::UserCommand,
    },
    /// Lists the flows (running host or store file, as `user`).
    Flows {
        /// Configuration file of the host.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cmd::flows::FlowsCommand,
    },
    /// Lists the processor instances, with their status and counts while
    /// the host runs.
    Processors {
        /// Configuration file of the host.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cmd::processors::ProcessorsCommand,
    },
    /// Lists the subscriptions.
    Subscriptions {
        /// Configuration file of the host.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: cmd::processors::SubscriptionsCommand,
    },
    /// Checks a configuration file or prints a complete one.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    fnaa_host::telemetry::init(cli.log_json);
    let result = match cli.command {
        Command::Serve { config } => cmd::serve::run(config.as_deref()),
        Command::Plugin(command) => cmd::plugin::run(command),
        Command::User { config, command } => cmd::user::run(config.as_deref(), command),
        Command::Flows { config, command } => cmd::flows::run(config.as_deref(), command),
        Command::Processors { config, command } => {
            cmd::processors::run_processors(config.as_deref(), command)
        }
        Command::Subscriptions { config, command } => {
            cmd::processors::run_subscriptions(config.as_deref(), command)
        }
        Command::Config(command) => cmd::config::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("fnaa: {error:#}");
            ExitCode::FAILURE
        }
    }
}

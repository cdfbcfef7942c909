//! `fnaa processors list` and `fnaa subscriptions list`: the pipelines
//! users created over FNAP, from the running host (with their status) or,
//! when it is stopped, its store file.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::admin::Admin;
use super::or_dash;

/// Processor instances.
#[derive(Debug, Subcommand)]
pub enum ProcessorsCommand {
    /// Lists them: name, owner, plugin, inputs, outputs, state, status
    /// (the status and counts only while the host runs).
    List,
}

/// Subscriptions.
#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Lists them: copy flow, source, local flow, subscriber, and for a
    /// flow of another organisation its FNAA and state.
    List,
}

/// Runs a `fnaa processors` command.
pub fn run_processors(
    config: Option<&Path>,
    command: ProcessorsCommand,
) -> anyhow::Result<ExitCode> {
    super::block_on(async {
        let mut admin = Admin::open(config).await?;
        match command {
            ProcessorsCommand::List => {
                for p in admin.list_processors().await? {
                    let plugin = if p.plugin_version.is_empty() {
                        p.plugin.clone()
                    } else {
                        format!("{}@{}", p.plugin, p.plugin_version)
                    };
                    let status = format!("{} {}", p.status, p.status_detail);
                    println!(
                        "{}\t{}\t{plugin}\t{}\t{}\t{}\t{}",
                        p.name,
                        p.owner,
                        p.inputs.join(","),
                        p.outputs.join(","),
                        p.state,
                        or_dash(status.trim())
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs a `fnaa subscriptions` command.
pub fn run_subscriptions(
    config: Option<&Path>,
    command: SubscriptionsCommand,
) -> anyhow::Result<ExitCode> {
    super::block_on(async {
        let mut admin = Admin::open(config).await?;
        match command {
            SubscriptionsCommand::List => {
                for s in admin.list_subscriptions().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        s.id,
                        s.source,
                        or_dash(&s.local),
                        s.subscriber,
                        or_dash(&s.fnaa),
                        or_dash(&s.state)
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

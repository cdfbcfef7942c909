//! `fnaa processors list` and `fnaa subscriptions list`: the pipelines
//! users created over FNAP, from the running host (with their status) or,
//! when it is stopped, its store file.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::admin::Admin;

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
                    let status = if p.status.is_empty() {
                        "-".to_owned()
                    } else {
                        format!("{} {}", p.status, p.status_detail)
                            .trim_end()
                            .to_owned()
                    };
                    println!(
                        "{}\t{}\t{plugin}\t{}\t{}\t{}\t{status}",
                        p.name,
                        p.owner,
                        p.inputs.join(","),
                        p.outputs.join(","),
                        p.state
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
                let dash = |text: String| {
                    if text.is_empty() {
                        "-".to_owned()
                    } else {
                        text
                    }
                };
                for s in admin.list_subscriptions().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        s.id,
                        s.source,
                        dash(s.local),
                        s.subscriber,
                        dash(s.fnaa),
                        dash(s.state)
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

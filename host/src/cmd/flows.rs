//! `fnaa flows list`: the host's flows, from the running host or, when it
//! is stopped, its store file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use fnaa_control::names::DnsName;

use super::admin::Admin;
use super::or_dash;

/// Flow inspection.
#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Lists the flows: name, owner, visibility, broker type, topic, servers.
    List {
        /// Only the flows of this namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
}

/// Runs a `fnaa flows` command.
pub fn run(config: Option<&Path>, command: FlowsCommand) -> anyhow::Result<ExitCode> {
    super::block_on(async {
        let mut admin = Admin::open(config).await?;
        match command {
            FlowsCommand::List { namespace } => {
                let namespace = namespace
                    .map(|ns| {
                        DnsName::parse(&ns).with_context(|| format!("invalid namespace `{ns}`"))
                    })
                    .transpose()?;
                for flow in admin.list_flows(namespace.as_ref()).await? {
                    let visibility = match flow.visibility() {
                        fnaa_control::grpc::pb::Visibility::Public => "public",
                        fnaa_control::grpc::pb::Visibility::Private => "private",
                    };
                    println!(
                        "{}\t{}\t{visibility}\t{}\t{}\t{}",
                        flow.name,
                        flow.owner,
                        or_dash(&flow.broker_type),
                        or_dash(&flow.topic),
                        or_dash(&flow.servers.join(","))
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

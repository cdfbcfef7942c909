//! `fnaa flows list`: the flows in the host's store (stopped host; on a
//! running one use `flow list flows` or the gRPC API).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use fnaa_control::names::DnsName;
use fnaa_control::service::Principal;

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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    runtime.block_on(async {
        let service = super::user::offline_service(config)?;
        match command {
            FlowsCommand::List { namespace } => {
                let namespace = namespace
                    .map(|ns| {
                        DnsName::parse(&ns).with_context(|| format!("invalid namespace `{ns}`"))
                    })
                    .transpose()?;
                for flow in service
                    .list_flows(&Principal::Operator, namespace.as_ref())
                    .await?
                {
                    let (kind, topic, servers) = match &flow.binding {
                        Some(binding) => (
                            binding.broker_type.as_str(),
                            binding.topic.as_str(),
                            binding.servers.join(","),
                        ),
                        None => ("-", "-", "-".to_owned()),
                    };
                    println!(
                        "{}\t{}\t{}\t{kind}\t{topic}\t{servers}",
                        flow.name,
                        flow.owner,
                        flow.visibility.as_str()
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

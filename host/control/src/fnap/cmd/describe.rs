//! `DESCRIBE FLOW|PROCESSOR|SUBSCRIPTION <name>`: connection details of a
//! flow, the configuration and status of a processor instance, or the
//! state of a subscription.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str = "DESCRIBE FLOW|PROCESSOR|SUBSCRIPTION <name>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Describe {
    Flow(DnsName),
    Processor(DnsName),
    Subscription(DnsName),
}

pub(crate) fn parse(args: Args<'_>) -> Result<Describe, ParseError> {
    let mut args = args.usage(USAGE);
    let kind = args.keyword("FLOW, PROCESSOR or SUBSCRIPTION")?;
    let name = args.name("name")?;
    args.end()?;
    match kind.as_str() {
        "FLOW" => Ok(Describe::Flow(name)),
        "PROCESSOR" => Ok(Describe::Processor(name)),
        "SUBSCRIPTION" => Ok(Describe::Subscription(name)),
        other => Err(args.error(format!("cannot describe `{other}`"))),
    }
}

/// The data lines of `DESCRIBE FLOW`: the thesis's `flow=`, `type=`,
/// `topic=`, `server=` first, then what a subscriber also needs; for a
/// copy flow, the `modes` its subscriber may take the events in.
pub fn flow_lines(flow: &crate::store::Flow, modes: &[crate::store::TransferMode]) -> Vec<String> {
    let mut lines = vec![format!("flow={}", flow.name)];
    if let Some(binding) = &flow.binding {
        lines.push(format!("type={}", binding.broker_type));
        lines.push(format!("topic={}", binding.topic));
        lines.push(format!("server={}", binding.servers.join(",")));
        lines.push(format!("tls={}", if binding.tls { "yes" } else { "no" }));
    }
    lines.push(format!("visibility={}", flow.visibility.as_str()));
    lines.push(format!("namespace={}", flow.namespace));
    if let Some(source) = &flow.copy_of {
        lines.push(format!("copy-of={source}"));
        let modes: Vec<&str> = modes.iter().map(|m| m.as_str()).collect();
        lines.push(format!("modes={}", modes.join(",")));
    }
    lines.extend(flow.description.lines());
    lines
}

/// The data lines of `DESCRIBE PROCESSOR`.
pub fn processor_lines(view: &crate::service::ProcessorView) -> Vec<String> {
    let processor = &view.processor;
    let join = |flows: &[DnsName]| {
        flows
            .iter()
            .map(DnsName::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut lines = vec![
        format!("processor={}", processor.name),
        format!("plugin={}", processor.plugin.name),
        format!(
            "version={}",
            processor.plugin.version.as_deref().unwrap_or("latest")
        ),
        format!("input={}", join(&processor.inputs)),
        format!("output={}", join(&processor.outputs)),
        format!("state={}", processor.state.as_str()),
    ];
    if let Some(status) = &view.status {
        lines.push(format!("status={}", status.state));
        if !status.detail.is_empty() {
            lines.push(format!("detail={}", status.detail));
        }
    }
    lines.push(format!("config={}", processor.config));
    lines
}

/// The data lines of `DESCRIBE SUBSCRIPTION`.
pub fn subscription_lines(view: &crate::service::SubscriptionView) -> Vec<String> {
    let subscription = &view.subscription;
    let mut lines = vec![
        format!("subscription={}", subscription.id),
        format!("source={}", subscription.source),
        format!(
            "local={}",
            subscription.local.as_ref().map_or("-", DnsName::as_str)
        ),
        format!("subscriber={}", subscription.subscriber),
    ];
    if let Some(remote) = &subscription.remote {
        lines.push(format!("fnaa={}", remote.fnaa));
        lines.push(format!("mode={}", remote.mode.as_str()));
    }
    lines.push(format!("state={}", view.state));
    if let Some(reason) = &view.reason {
        lines.push(format!("reason={reason}"));
    }
    lines.push(format!("created={}", subscription.created_unix));
    for (id, status) in &view.pipelines {
        let half = id.rsplit('/').next().unwrap_or(id);
        lines.push(
            format!("{half}={} {}", status.state, status.detail)
                .trim_end()
                .to_owned(),
        );
    }
    lines
}

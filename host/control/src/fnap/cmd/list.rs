//! `LIST FLOWS [<namespace>]`, `LIST NAMESPACES`, `LIST SUBSCRIPTIONS`,
//! `LIST PROCESSORS`.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str =
    "LIST FLOWS [<namespace>] | LIST NAMESPACES | LIST SUBSCRIPTIONS | LIST PROCESSORS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List {
    Flows(Option<DnsName>),
    Namespaces,
    Subscriptions,
    Processors,
}

pub(crate) fn parse(args: Args<'_>) -> Result<List, ParseError> {
    let mut args = args.usage(USAGE);
    let list = match args
        .keyword("FLOWS, NAMESPACES, SUBSCRIPTIONS or PROCESSORS")?
        .as_str()
    {
        "FLOWS" => match args.word() {
            Some(namespace) => List::Flows(Some(crate::fnap::command::parse_name(namespace)?)),
            None => List::Flows(None),
        },
        "NAMESPACES" => List::Namespaces,
        "SUBSCRIPTIONS" => List::Subscriptions,
        "PROCESSORS" => List::Processors,
        other => return Err(args.error(format!("cannot list `{other}`"))),
    };
    args.end()?;
    Ok(list)
}

/// One data line per subscription: `<id> source=<flow> local=<flow|->
/// subscriber=<account>`, and for a flow of another FNAA also
/// `fnaa=<host> state=<active|revoked>`.
pub fn subscription_line(subscription: &crate::store::Subscription) -> String {
    let mut line = format!(
        "{} source={} local={} subscriber={}",
        subscription.id,
        subscription.source,
        subscription.local.as_ref().map_or("-", DnsName::as_str),
        subscription.subscriber
    );
    if let Some(remote) = &subscription.remote {
        line.push_str(&format!(
            " fnaa={} state={}",
            remote.fnaa,
            remote.state.as_str()
        ));
    }
    line
}

/// One data line per processor: `<name> plugin=<plugin[@version]> state=<state>`.
pub fn processor_line(processor: &crate::store::Processor) -> String {
    format!(
        "{} plugin={} state={}",
        processor.name,
        processor.plugin,
        processor.state.as_str()
    )
}

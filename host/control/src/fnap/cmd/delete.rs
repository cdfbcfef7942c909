//! `DELETE FLOW|NAMESPACE|PROCESSOR <name>`.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str = "DELETE FLOW|NAMESPACE|PROCESSOR <name>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delete {
    Flow(DnsName),
    Namespace(DnsName),
    Processor(DnsName),
}

pub(crate) fn parse(args: Args<'_>) -> Result<Delete, ParseError> {
    let mut args = args.usage(USAGE);
    let kind = args.keyword("FLOW, NAMESPACE or PROCESSOR")?;
    let name = args.name("name")?;
    args.end()?;
    match kind.as_str() {
        "FLOW" => Ok(Delete::Flow(name)),
        "NAMESPACE" => Ok(Delete::Namespace(name)),
        "PROCESSOR" => Ok(Delete::Processor(name)),
        other => Err(args.error(format!("cannot delete `{other}`"))),
    }
}

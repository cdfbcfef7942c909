//! `PAUSE PROCESSOR <name>`.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str = "PAUSE PROCESSOR <name>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub processor: DnsName,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Pause, ParseError> {
    let mut args = args.usage(USAGE);
    if args.keyword("PROCESSOR")? != "PROCESSOR" {
        return Err(args.error("only processors can be paused"));
    }
    let processor = args.name("processor name")?;
    args.end()?;
    Ok(Pause { processor })
}

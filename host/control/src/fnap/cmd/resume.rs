//! `RESUME PROCESSOR <name>`.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str = "RESUME PROCESSOR <name>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub processor: DnsName,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Resume, ParseError> {
    let mut args = args.usage(USAGE);
    if args.keyword("PROCESSOR")? != "PROCESSOR" {
        return Err(args.error("only processors can be resumed"));
    }
    let processor = args.name("processor name")?;
    args.end()?;
    Ok(Resume { processor })
}

//! `SET FLOW <flow> PUBLIC|PRIVATE`: whether anonymous sessions and other
//! users may describe and subscribe to a flow.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;
use crate::store::Visibility;

pub const USAGE: &str = "SET FLOW <flow> PUBLIC|PRIVATE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub flow: DnsName,
    pub visibility: Visibility,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Set, ParseError> {
    let mut args = args.usage(USAGE);
    if args.keyword("FLOW")? != "FLOW" {
        return Err(args.error("only flows have settings"));
    }
    let flow = args.name("flow name")?;
    let visibility = match args.keyword("PUBLIC or PRIVATE")?.as_str() {
        "PUBLIC" => Visibility::Public,
        "PRIVATE" => Visibility::Private,
        other => return Err(args.error(format!("expected PUBLIC or PRIVATE, got `{other}`"))),
    };
    args.end()?;
    Ok(Set { flow, visibility })
}

//! `UNSUBSCRIBE <subscription>`: the subscription is named by the copy
//! flow that SUBSCRIBE returned.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str = "UNSUBSCRIBE <subscription>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub subscription: DnsName,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Unsubscribe, ParseError> {
    let mut args = args.usage(USAGE);
    let subscription = args.name("subscription")?;
    args.end()?;
    Ok(Unsubscribe { subscription })
}

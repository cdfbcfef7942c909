//! `SUBSCRIBE <flow> [LOCAL <flow>]`.
//!
//! Without LOCAL (what a subscriber's FNAA sends to the flow's FNAA), the
//! server creates a copy flow `<random>.<flow>` fed from `<flow>` and
//! returns its name: the publisher keeps control and revokes by deleting
//! it (thesis 7.4.3). With LOCAL (what a user sends to their own FNAA),
//! the events are also delivered into the user's flow `<local>`, created
//! if needed.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;

pub const USAGE: &str = "SUBSCRIBE <flow> [LOCAL <flow>]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub source: DnsName,
    pub local: Option<DnsName>,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Subscribe, ParseError> {
    let mut args = args.usage(USAGE);
    let source = args.name("flow name")?;
    let local = match args.word() {
        None => None,
        Some(word) if word.eq_ignore_ascii_case("LOCAL") => Some(args.name("local flow name")?),
        Some(other) => return Err(args.error(format!("expected LOCAL, got `{other}`"))),
    };
    args.end()?;
    Ok(Subscribe { source, local })
}

//! `HELP [<verb>]`: the usage lines, as a data block.

use crate::fnap::command::{Args, ParseError};

pub const USAGE: &str = "HELP [<verb>]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    pub verb: Option<String>,
}

impl Help {
    /// The usage lines this request asks for.
    pub fn lines(&self) -> Vec<String> {
        super::ALL_USAGES
            .iter()
            .filter(|usage| match &self.verb {
                None => true,
                Some(verb) => usage.split(' ').next() == Some(verb.as_str()),
            })
            .map(|usage| (*usage).to_owned())
            .collect()
    }
}

pub(crate) fn parse(args: Args<'_>) -> Result<Help, ParseError> {
    let mut args = args.usage(USAGE);
    let verb = args.word().map(str::to_ascii_uppercase);
    args.end()?;
    Ok(Help { verb })
}

//! `QUIT`: takes no argument.

use crate::fnap::command::{Args, ParseError};

pub const USAGE: &str = "QUIT";

pub(crate) fn parse(args: Args<'_>) -> Result<(), ParseError> {
    args.usage(USAGE).end()
}

//! `RELAY <copy> [WINDOW <chunks>]`: what a subscriber's FNAA sends to the
//! publisher's FNAA to receive the events of its copy flow over the
//! session itself (docs/fnap.md 5.16); the framing is in `fnap::relay`.

use crate::fnap::command::{Args, ParseError};
use crate::fnap::relay::{DEFAULT_WINDOW, MAX_WINDOW};
use crate::names::DnsName;

pub const USAGE: &str = "RELAY <copy flow> [WINDOW <chunks>]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub copy: DnsName,
    /// Chunks sent before the server waits for an ACK.
    pub window: u32,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Relay, ParseError> {
    let mut args = args.usage(USAGE);
    let copy = args.name("copy flow name")?;
    let window = match args.word() {
        None => DEFAULT_WINDOW,
        Some(word) if word.eq_ignore_ascii_case("WINDOW") => {
            let value = args
                .word()
                .ok_or_else(|| args.error("WINDOW needs a number of chunks"))?;
            match value.parse::<u32>() {
                Ok(window) if (1..=MAX_WINDOW).contains(&window) => window,
                _ => {
                    return Err(args.error(format!(
                        "WINDOW must be 1 to {MAX_WINDOW} chunks, not `{value}`"
                    )));
                }
            }
        }
        Some(other) => return Err(args.error(format!("expected WINDOW, got `{other}`"))),
    };
    args.end()?;
    Ok(Relay { copy, window })
}

//! `AUTHENTICATE <mechanism> [<initial-response>]`: starts a SASL exchange.

use crate::fnap::command::{Args, ParseError};

pub const USAGE: &str = "AUTHENTICATE <mechanism> [<initial-response>]";

/// The mechanism name (upper-cased) and an optional SASL initial
/// response in base64 (`=` stands for an empty one).
#[derive(Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub mechanism: String,
    pub initial_response: Option<String>,
}

// The initial response carries credentials: never print it.
impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("mechanism", &self.mechanism)
            .field(
                "initial_response",
                &self.initial_response.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

pub(crate) fn parse(args: Args<'_>) -> Result<Authenticate, ParseError> {
    let mut args = args.usage(USAGE);
    let mechanism = args.keyword("mechanism")?;
    let initial_response = args.word().map(str::to_owned);
    args.end()?;
    Ok(Authenticate {
        mechanism,
        initial_response,
    })
}

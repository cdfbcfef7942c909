//! Exit codes, after sysexits(3), so scripts can tell failures apart:
//!
//! | code | name | when |
//! | --- | --- | --- |
//! | 0 | | success |
//! | 64 | EX_USAGE | bad command line |
//! | 65 | EX_DATAERR | invalid name or argument, or the object is in use (501, 552, 553) |
//! | 66 | EX_NOINPUT | no such flow, namespace, subscription or processor (550) |
//! | 68 | EX_NOHOST | the FNAA could not be found in DNS |
//! | 69 | EX_UNAVAILABLE | the FNAA cannot be reached, or the command is not offered there (502) |
//! | 70 | EX_SOFTWARE | unexpected internal error |
//! | 73 | EX_CANTCREAT | the object already exists (554) |
//! | 75 | EX_TEMPFAIL | temporary failure, try again later (4xx replies, timeouts) |
//! | 76 | EX_PROTOCOL | the server broke the protocol (500, 503, malformed replies) |
//! | 77 | EX_NOPERM | authentication failed or permission denied (530, 535, 538, 551) |
//! | 78 | EX_CONFIG | bad `.flow.yml`, unknown agent, missing credentials |

use fnaa_control::client::ClientError;

pub const OK: u8 = 0;
pub const USAGE: u8 = 64;
pub const DATAERR: u8 = 65;
pub const NOINPUT: u8 = 66;
pub const NOHOST: u8 = 68;
pub const UNAVAILABLE: u8 = 69;
pub const SOFTWARE: u8 = 70;
pub const CANTCREAT: u8 = 73;
pub const TEMPFAIL: u8 = 75;
pub const PROTOCOL: u8 = 76;
pub const NOPERM: u8 = 77;
pub const CONFIG: u8 = 78;

/// The exit code for a reply code.
pub fn for_reply(code: u16) -> u8 {
    match code {
        501 | 552 | 553 => DATAERR,
        550 => NOINPUT,
        502 => UNAVAILABLE,
        554 => CANTCREAT,
        530 | 535 | 538 | 551 | 504 => NOPERM,
        400..=499 => TEMPFAIL,
        _ => PROTOCOL,
    }
}

/// The exit code for a client failure.
pub fn for_client_error(error: &ClientError) -> u8 {
    match error {
        ClientError::Rejected { code, .. } => for_reply(*code),
        ClientError::Io(_) | ClientError::Closed => UNAVAILABLE,
        ClientError::Timeout => TEMPFAIL,
        ClientError::Tls(_) => UNAVAILABLE,
        ClientError::Protocol(_) => PROTOCOL,
        ClientError::Sasl(_) => NOPERM,
    }
}

/// A failure with its exit code and message.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        Failure::new(for_client_error(&error), error.to_string())
    }
}

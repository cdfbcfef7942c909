//! Replies, and the one mapping from errors to reply codes.
//!
//! A reply is one line `<code> <text>`, or a data block: `220 DATA`, data
//! lines, `220 OK`. A data line never has the form `<3 digits> <text>`
//! (each starts with a name containing a dot, a `key=` or a verb), so a
//! client knows the block has ended when it reads a reply line.

use crate::fnap::ParseError;
use crate::provision::PeerError;
use crate::sasl::SaslError;
use crate::service::ServiceError;

/// Reply codes (docs/fnap.md, "Reply codes"). The first digit says how
/// the command ended: 2 done, 3 send more, 4 failed for now (try again
/// later), 5 failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ReplyCode {
    /// Greeting, success, start of a data block (`220 DATA`).
    Ok = 220,
    /// The server closes the connection after QUIT.
    Closing = 221,
    /// SASL: a challenge in base64; send the next response.
    SaslChallenge = 334,
    /// Not available now: too many connections, idle timeout, shutdown.
    Unavailable = 421,
    /// The object is being created or deleted; try again.
    Busy = 450,
    /// A local error (state store, command timeout); nothing was changed
    /// or the change is still running.
    LocalError = 451,
    /// The broker, DNS or pipeline runner failed; nothing was left behind.
    ProvisioningFailed = 452,
    /// A quota of this server was reached (anonymous subscriptions per
    /// address or per flow); release something or try later.
    QuotaExceeded = 453,
    /// Too many failed logins from this address; try later.
    Throttled = 454,
    /// Another organisation's FNAA could not be reached for now (DNS
    /// failure, connection refused, TLS, no answer, its own `4xx`); nothing
    /// was left behind.
    PeerUnavailable = 455,
    /// Line not understood: unknown command, too long, not UTF-8.
    SyntaxError = 500,
    /// Arguments not understood.
    BadArguments = 501,
    /// Command known but not offered here (e.g. STARTTLS without TLS).
    NotImplemented = 502,
    /// Command not allowed now (e.g. AUTHENTICATE twice).
    BadSequence = 503,
    /// Unknown SASL mechanism.
    UnknownMechanism = 504,
    /// The command needs an authenticated session.
    AuthenticationRequired = 530,
    /// Wrong credentials.
    AuthenticationFailed = 535,
    /// PLAIN is refused on a connection without TLS.
    EncryptionRequired = 538,
    /// No such flow, namespace, processor or subscription.
    NotFound = 550,
    /// The object belongs to another user, or anonymous access.
    PermissionDenied = 551,
    /// The object is in use or not empty.
    Conflict = 552,
    /// Not a valid name.
    InvalidName = 553,
    /// The object exists already.
    AlreadyExists = 554,
    /// Another organisation's FNAA refused for good (no FNAA in DNS for the
    /// flow, login refused, its own `5xx`, an answer that cannot be used);
    /// the text has its reply.
    PeerRefused = 556,
}

impl ReplyCode {
    pub fn number(self) -> u16 {
        self as u16
    }
}

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: ReplyCode,
    pub text: String,
    /// Lines of a data block, sent between `220 DATA` and `220 OK`.
    pub data: Option<Vec<String>>,
}

impl Reply {
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Reply {
        Reply {
            code,
            text: text.into(),
            data: None,
        }
    }

    /// `220 <text>`.
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply::new(ReplyCode::Ok, text)
    }

    /// A data block.
    pub fn data(lines: Vec<String>) -> Reply {
        Reply {
            code: ReplyCode::Ok,
            text: "OK".into(),
            data: Some(lines),
        }
    }

    /// The reply on the wire, CRLF after each line. Control characters in
    /// texts are replaced, so a reply is always the lines it claims to be.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        if let Some(lines) = &self.data {
            out.push_str("220 DATA\r\n");
            for line in lines {
                out.push_str(&clean(line));
                out.push_str("\r\n");
            }
        }
        out.push_str(&format!("{} {}\r\n", self.code.number(), clean(&self.text)));
        out.into_bytes()
    }
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl From<&ParseError> for Reply {
    fn from(error: &ParseError) -> Reply {
        let code = match error {
            ParseError::Empty | ParseError::UnknownCommand(_) => ReplyCode::SyntaxError,
            ParseError::Syntax { .. } => ReplyCode::BadArguments,
            ParseError::InvalidName { .. } => ReplyCode::InvalidName,
        };
        Reply::new(code, error.to_string())
    }
}

impl From<&ServiceError> for Reply {
    fn from(error: &ServiceError) -> Reply {
        let code = match error {
            ServiceError::InvalidName(_) => ReplyCode::InvalidName,
            ServiceError::InvalidArgument(_) => ReplyCode::BadArguments,
            ServiceError::NotFound { .. } => ReplyCode::NotFound,
            ServiceError::AlreadyExists { .. } => ReplyCode::AlreadyExists,
            ServiceError::PermissionDenied(_) => ReplyCode::PermissionDenied,
            ServiceError::Conflict(_) => ReplyCode::Conflict,
            ServiceError::Busy(_) => ReplyCode::Busy,
            ServiceError::NotImplemented(_) => ReplyCode::NotImplemented,
            ServiceError::AuthenticationFailed => ReplyCode::AuthenticationFailed,
            ServiceError::Provisioning(_) => ReplyCode::ProvisioningFailed,
            ServiceError::QuotaExceeded(_) => ReplyCode::QuotaExceeded,
            ServiceError::Store(_) => ReplyCode::LocalError,
            ServiceError::Peer(PeerError::Unavailable { .. }) => ReplyCode::PeerUnavailable,
            ServiceError::Peer(
                PeerError::NoFnaa { .. } | PeerError::Refused { .. } | PeerError::Invalid { .. },
            ) => ReplyCode::PeerRefused,
        };
        // Store internals are logged, not shown.
        let text = match error {
            ServiceError::Store(_) => "local error in processing, try again later".to_owned(),
            other => other.to_string(),
        };
        Reply::new(code, text)
    }
}

impl From<&SaslError> for Reply {
    fn from(error: &SaslError) -> Reply {
        let code = match error {
            SaslError::BadBase64 | SaslError::Malformed(_) => ReplyCode::BadArguments,
            SaslError::Failed | SaslError::ServerNotAuthenticated => {
                ReplyCode::AuthenticationFailed
            }
        };
        Reply::new(code, error.to_string())
    }
}

/// Fixed replies of the session, next to the error mapping so that every
/// code is chosen here.
pub mod fixed {
    use super::{Reply, ReplyCode};

    pub fn greeting(hostname: &str) -> Reply {
        Reply::ok(format!("{hostname} FNAA"))
    }
    pub fn go_ahead() -> Reply {
        Reply::ok("OK")
    }
    pub fn authenticated() -> Reply {
        Reply::ok("Authenticated")
    }
    pub fn bye(hostname: &str) -> Reply {
        Reply::new(ReplyCode::Closing, format!("{hostname} closing connection"))
    }
    pub fn ready_for_tls() -> Reply {
        Reply::ok("Ready to start TLS")
    }
    pub fn line_too_long(max: usize) -> Reply {
        Reply::new(
            ReplyCode::SyntaxError,
            format!("line too long (at most {max} octets)"),
        )
    }
    pub fn invalid_line() -> Reply {
        Reply::new(
            ReplyCode::SyntaxError,
            "line is not UTF-8 text or contains control characters",
        )
    }
    pub fn too_many_connections(hostname: &str) -> Reply {
        Reply::new(
            ReplyCode::Unavailable,
            format!("{hostname} too many connections, try again later"),
        )
    }
    pub fn idle_timeout(hostname: &str) -> Reply {
        Reply::new(
            ReplyCode::Unavailable,
            format!("{hostname} idle for too long, closing connection"),
        )
    }
    pub fn shutting_down(hostname: &str) -> Reply {
        Reply::new(
            ReplyCode::Unavailable,
            format!("{hostname} shutting down, try again later"),
        )
    }
    pub fn command_timeout() -> Reply {
        Reply::new(
            ReplyCode::LocalError,
            "the command took too long; it completes or is undone in the background",
        )
    }
    pub fn authentication_required() -> Reply {
        Reply::new(
            ReplyCode::AuthenticationRequired,
            "authentication required: use AUTHENTICATE first",
        )
    }
    pub fn already_authenticated() -> Reply {
        Reply::new(ReplyCode::BadSequence, "already authenticated")
    }
    pub fn unknown_mechanism(name: &str, offered: &str) -> Reply {
        Reply::new(
            ReplyCode::UnknownMechanism,
            format!("unknown mechanism {name}; offered: {offered}"),
        )
    }
    pub fn mechanism_disabled(name: &str) -> Reply {
        Reply::new(
            ReplyCode::UnknownMechanism,
            format!("mechanism {name} is not enabled on this server"),
        )
    }
    pub fn encryption_required() -> Reply {
        Reply::new(
            ReplyCode::EncryptionRequired,
            "PLAIN needs an encrypted connection: use STARTTLS first",
        )
    }
    pub fn authentication_cancelled() -> Reply {
        Reply::new(ReplyCode::BadArguments, "authentication cancelled")
    }
    pub fn throttled() -> Reply {
        Reply::new(
            ReplyCode::Throttled,
            "too many failed logins from your address, try again later",
        )
    }
    pub fn too_many_failures(hostname: &str) -> Reply {
        Reply::new(
            ReplyCode::Unavailable,
            format!("{hostname} too many failed logins, closing connection"),
        )
    }
    pub fn starttls_unavailable() -> Reply {
        Reply::new(
            ReplyCode::NotImplemented,
            "STARTTLS is not available on this server",
        )
    }
    pub fn tls_already_active() -> Reply {
        Reply::new(ReplyCode::BadSequence, "TLS is already active")
    }
    pub fn starttls_after_auth() -> Reply {
        Reply::new(
            ReplyCode::BadSequence,
            "STARTTLS must come before AUTHENTICATE",
        )
    }
    pub fn challenge(encoded: String) -> Reply {
        Reply::new(ReplyCode::SaslChallenge, encoded)
    }
}

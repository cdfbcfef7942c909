//! SASL for FNAP: PLAIN (RFC 4616), SCRAM-SHA-256 (RFC 5802, RFC 7677)
//! and ANONYMOUS (RFC 4505), the server and the client side, and the
//! credentials the store keeps for them. No I/O.

pub mod credentials;
pub mod plain;
pub mod scram;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Mechanisms this implementation knows, strongest first.
pub const MECHANISMS: &[&str] = &["SCRAM-SHA-256", "PLAIN", "ANONYMOUS"];

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    Anonymous,
}

impl Mechanism {
    /// The mechanism of an (upper-case) name.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "ANONYMOUS" => Some(Mechanism::Anonymous),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Anonymous => "ANONYMOUS",
        }
    }
}

/// Why a SASL exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the SASL response is not valid base64")]
    BadBase64,
    #[error("malformed SASL message: {0}")]
    Malformed(String),
    #[error("authentication failed")]
    Failed,
    #[error("the server's SCRAM signature is wrong")]
    ServerNotAuthenticated,
}

/// Decodes one SASL line: base64, `=` for an empty message.
pub fn decode(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim();
    if line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::BadBase64)
}

/// Encodes one SASL message for a line.
pub fn encode(message: &[u8]) -> String {
    if message.is_empty() {
        "=".to_owned()
    } else {
        STANDARD.encode(message)
    }
}

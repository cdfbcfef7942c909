//! Who may do what: a user acts only in the namespaces they own; anybody
//! (also anonymous sessions) may read a public flow or one granted to them;
//! the operator may do everything.

use std::net::IpAddr;

use rand::distr::{Alphanumeric, SampleString};

use super::ServiceError;
use crate::store::{Flow, Namespace, Visibility};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An authenticated account.
    User(String),
    /// A session authenticated with ANONYMOUS: reads public flows only, and
    /// controls only the subscriptions it made itself.
    Anonymous(AnonymousSession),
    /// The host's operator (gRPC admin token, `fnaa` CLI).
    Operator,
}

/// The identity of one anonymous session (docs/fnap.md 5.2): a name drawn
/// at random when the session authenticates, never shown to it or reused,
/// so no other session, anonymous or not, can act as it; and the client's
/// address, which quotas count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousSession {
    /// `anonymous-` and 20 random lower-case letters and digits (~103 bits).
    pub id: String,
    /// Where the session comes from.
    pub address: IpAddr,
}

/// The prefix of the names of anonymous sessions.
pub const ANONYMOUS_PREFIX: &str = "anonymous-";

impl AnonymousSession {
    /// A new, unguessable identity for a session from `address`.
    pub fn new(address: IpAddr) -> AnonymousSession {
        let tag = Alphanumeric
            .sample_string(&mut rand::rng(), 20)
            .to_ascii_lowercase();
        AnonymousSession {
            id: format!("{ANONYMOUS_PREFIX}{tag}"),
            address,
        }
    }
}

/// The SASL ANONYMOUS trace (RFC 4505) that names a capability: a client
/// that sends `capability:<secret>` (32 to 128 letters, digits, `-` or
/// `_`) gets the same anonymous identity in every session with that
/// secret, so it can end later the subscriptions it made (an FNAA
/// subscribing for its users does). Any other trace gets a fresh identity.
pub const CAPABILITY_TRACE: &str = "capability:";

impl AnonymousSession {
    /// The identity of a session from `address` whose SASL ANONYMOUS trace
    /// is `trace`: derived from the capability it names, or new.
    pub fn from_trace(address: IpAddr, trace: &[u8]) -> AnonymousSession {
        let secret = std::str::from_utf8(trace)
            .ok()
            .and_then(|t| t.strip_prefix(CAPABILITY_TRACE))
            .filter(|s| {
                (32..=128).contains(&s.len())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        let Some(secret) = secret else {
            return AnonymousSession::new(address);
        };
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(format!("fnaa anonymous capability\0{secret}"));
        let tag: String = digest.iter().take(13).map(|b| format!("{b:02x}")).collect();
        AnonymousSession {
            id: format!("{ANONYMOUS_PREFIX}{}", &tag[..20]),
            address,
        }
    }
}

/// Whether a recorded subscriber name is that of an anonymous session.
pub fn is_anonymous_name(name: &str) -> bool {
    name.starts_with(ANONYMOUS_PREFIX) || name == "anonymous"
}

impl Principal {
    /// The name recorded as subscriber or owner.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(name) => name,
            Principal::Anonymous(session) => &session.id,
            Principal::Operator => "operator",
        }
    }
}

pub(super) fn anonymous_denied() -> ServiceError {
    ServiceError::PermissionDenied("anonymous sessions may only read public flows".into())
}

pub(super) fn authorize_namespace(
    principal: &Principal,
    namespace: &Namespace,
) -> Result<(), ServiceError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::User(user) if &namespace.owner == user => Ok(()),
        Principal::User(_) => Err(ServiceError::PermissionDenied(format!(
            "namespace {} belongs to another user",
            namespace.name
        ))),
        Principal::Anonymous(_) => Err(anonymous_denied()),
    }
}

pub(super) fn authorize_owner(principal: &Principal, flow: &Flow) -> Result<(), ServiceError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::User(user) if &flow.owner == user => Ok(()),
        Principal::User(_) => Err(ServiceError::PermissionDenied(format!(
            "flow {} belongs to another user",
            flow.name
        ))),
        Principal::Anonymous(_) => Err(anonymous_denied()),
    }
}

pub(super) fn authorize_read(principal: &Principal, flow: &Flow) -> Result<(), ServiceError> {
    let allowed = flow.visibility == Visibility::Public
        || flow.granted_to.as_deref() == Some(principal.name())
        || match principal {
            Principal::Operator => true,
            Principal::User(user) => &flow.owner == user,
            Principal::Anonymous(_) => false,
        };
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::PermissionDenied(format!(
            "flow {} is private to its owner",
            flow.name
        )))
    }
}

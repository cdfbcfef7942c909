//! `[ingest]`: the HTTP listener through which sources that cannot replay
//! their events (an SDN controller's NApp, webhooks) hand CloudEvents to
//! the host.

use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

/// `[ingest]`: CloudEvents over HTTP (binary, structured and batched
/// mode) into an outbox broker. Off unless `listen` is set.
///
/// A request is answered `202` only once its events are in the outbox on
/// disk (they survive `kill -9` of the host); a pipeline whose source is
/// that outbox then moves them to their broker at least once.
///
/// ```toml
/// [brokers.connections.inbox]
/// type = "outbox"
/// path = "/var/lib/fnaa/inbox.redb"
///
/// [ingest]
/// listen = "127.0.0.1:8470"
/// outbox = "inbox"
/// topics = ["kytos"]
/// token_file = "/etc/fnaa/ingest.token"
/// ```
///
/// Producers `POST /events/<topic>` with `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Address of the listener. An address off loopback requires `tls`.
    pub listen: SocketAddr,
    /// The server's certificate and key (PEM); HTTPS when set.
    #[serde(default)]
    pub tls: Option<fnaa_control::config::TlsFiles>,
    /// The `[brokers.connections]` entry of `type = "outbox"` the events
    /// are stored in.
    pub outbox: String,
    /// The topics producers may post to (`/events/<topic>`).
    pub topics: Vec<String>,
    /// A file holding the bearer token producers present (surrounding
    /// white space ignored). Exactly one of `token_file`, `token_env` and
    /// `anonymous = true` is required.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Accept requests without a token (only on a loopback address).
    #[serde(default)]
    pub anonymous: bool,
    /// The largest request body accepted, in bytes (`413` beyond).
    /// Default: 4 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The most events one request may carry (`413` beyond). Default: 10,000.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
}

fn default_max_body_bytes() -> usize {
    4 << 20
}

fn default_max_events() -> usize {
    10_000
}

/// How producers prove who they are.
#[derive(Clone)]
pub enum Credential {
    Bearer(String),
    Anonymous,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credential::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// A configuration the listener cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum IngestConfigError {
    #[error(
        "[ingest] needs exactly one of token_file, token_env and anonymous = true (anonymous access is off unless enabled)"
    )]
    Credential,
    #[error("[ingest] token_file {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error("[ingest] token_env: environment variable {0} is not set or empty")]
    TokenEnv(String),
    #[error("[ingest] token in {0} is empty")]
    EmptyToken(String),
    #[error(
        "[ingest] listen = {0} is off loopback: set [ingest.tls] (TLS is required off loopback)"
    )]
    TlsRequired(SocketAddr),
    #[error("[ingest] anonymous = true is allowed only on a loopback address, not {0}")]
    AnonymousOffLoopback(SocketAddr),
    #[error("[ingest] topics is empty: name the topics producers may post to")]
    NoTopics,
    #[error(
        "[ingest] topic {0:?} is not a valid topic (letters, digits, `.`, `_`, `-`, 1 to 200 bytes)"
    )]
    BadTopic(String),
}

impl IngestConfig {
    /// Checks the settings and reads the token.
    pub fn credential(&self) -> Result<Credential, IngestConfigError> {
        let loopback = self.listen.ip().is_loopback();
        if !loopback && self.tls.is_none() {
            return Err(IngestConfigError::TlsRequired(self.listen));
        }
        if self.topics.is_empty() {
            return Err(IngestConfigError::NoTopics);
        }
        if let Some(bad) = self.topics.iter().find(|t| !is_valid_topic(t)) {
            return Err(IngestConfigError::BadTopic(bad.clone()));
        }
        match (&self.token_file, &self.token_env, self.anonymous) {
            (Some(path), None, false) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| IngestConfigError::TokenFile {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(IngestConfigError::EmptyToken(path.display().to_string()));
                }
                Ok(Credential::Bearer(token.to_owned()))
            }
            (None, Some(name), false) => match std::env::var(name) {
                Ok(token) if !token.trim().is_empty() => {
                    Ok(Credential::Bearer(token.trim().to_owned()))
                }
                _ => Err(IngestConfigError::TokenEnv(name.clone())),
            },
            (None, None, true) if loopback => Ok(Credential::Anonymous),
            (None, None, true) => Err(IngestConfigError::AnonymousOffLoopback(self.listen)),
            _ => Err(IngestConfigError::Credential),
        }
    }
}

/// Topic names: what every broker and the URL path accept unescaped.
pub fn is_valid_topic(topic: &str) -> bool {
    (1..=200).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> IngestConfig {
        toml::from_str(&format!(
            "outbox = \"inbox\"\ntopics = [\"kytos\"]\n{extra}"
        ))
        .expect("parses")
    }

    #[test]
    fn anonymous_is_off_unless_enabled_and_only_on_loopback() {
        let none = config("listen = \"127.0.0.1:1\"");
        assert!(matches!(
            none.credential(),
            Err(IngestConfigError::Credential)
        ));
        let local = config("listen = \"127.0.0.1:1\"\nanonymous = true");
        assert!(matches!(local.credential(), Ok(Credential::Anonymous)));
        let wide = config(
            "listen = \"0.0.0.0:1\"\nanonymous = true\ntls = { certificate = \"c\", private_key = \"k\" }",
        );
        assert!(matches!(
            wide.credential(),
            Err(IngestConfigError::AnonymousOffLoopback(_))
        ));
    }

    #[test]
    fn tls_is_required_off_loopback() {
        let wide = config("listen = \"0.0.0.0:1\"\ntoken_env = \"X\"");
        assert!(matches!(
            wide.credential(),
            Err(IngestConfigError::TlsRequired(_))
        ));
    }

    #[test]
    fn the_token_comes_from_its_file_and_is_never_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        let c = config(&format!(
            "listen = \"127.0.0.1:1\"\ntoken_file = {:?}",
            path.display().to_string()
        ));
        let credential = c.credential().expect("valid");
        assert!(matches!(&credential, Credential::Bearer(t) if t == "s3cret"));
        assert!(!format!("{credential:?}").contains("s3cret"));
        std::fs::write(&path, "  \n").expect("write");
        assert!(matches!(
            c.credential(),
            Err(IngestConfigError::EmptyToken(_))
        ));
    }

    #[test]
    fn topics_are_checked() {
        let mut c = config("listen = \"127.0.0.1:1\"\nanonymous = true");
        c.topics = vec!["a/b".into()];
        assert!(matches!(c.credential(), Err(IngestConfigError::BadTopic(t)) if t == "a/b"));
        c.topics.clear();
        assert!(matches!(c.credential(), Err(IngestConfigError::NoTopics)));
    }
}

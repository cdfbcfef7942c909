//! `~/.flow.yml`, in the thesis format (7.3): the FNAAs (agents) with their
//! credentials, and which agent hosts which namespace.
//!
//! ```yaml
//! agents:
//!   - name: fnaa-unix
//!     fqdn: fnaa.unix.ar
//!     username: test
//!     password: test          # optional: FLOW_PASSWORD or a prompt
//!     prefix: unix.ar-
//!     server: 127.0.0.1:61000 # optional: skips DNS
//!     tls: starttls           # optional: none, starttls, implicit
//!     ca: /etc/fnaa/ca.pem    # optional: CA for TLS
//!     mechanism: plain        # optional: plain, scram-sha-256, anonymous
//! namespaces:
//!   - name: flows.unix.ar
//!     agent: fnaa-unix
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// The FNAAs the user has accounts on.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// Namespaces and the agent hosting each.
    #[serde(default)]
    pub namespaces: Vec<NamespaceEntry>,
}

/// How the client talks to an FNAA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Clear text (the thesis set-up).
    None,
    /// Upgrade with STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// SASL mechanisms the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MechanismChoice {
    Plain,
    ScramSha256,
    Anonymous,
}

/// One FNAA.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The name other entries and `--agent` use.
    pub name: String,
    /// The FQDN of the FNAA, looked up in DNS (SRV).
    pub fqdn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Prepended to a remote flow's name to name the local copy when
    /// subscribing (`emiliano.ar-` gives `emiliano.ar-time.flows.unix.ar`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `host:port`, skipping DNS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<MechanismChoice>,
}

// The password must not end up in a debug print.
impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("fqdn", &self.fqdn)
            .field("username", &self.username)
            .field("prefix", &self.prefix)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// A namespace and its agent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceEntry {
    pub name: String,
    pub agent: String,
}

/// Why the file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("no agent named `{0}` in the configuration")]
    UnknownAgent(String),
    #[error("the namespace {namespace} names the unknown agent `{agent}`")]
    DanglingNamespace { namespace: String, agent: String },
}

impl FlowFile {
    /// Parses the YAML text.
    pub fn parse(text: &str, path: &Path) -> Result<FlowFile, AgentsError> {
        let file: FlowFile =
            serde_yaml_ng::from_str(text).map_err(|source| AgentsError::Parse {
                path: path.to_owned(),
                source,
            })?;
        for entry in &file.namespaces {
            if !file.agents.iter().any(|agent| agent.name == entry.agent) {
                return Err(AgentsError::DanglingNamespace {
                    namespace: entry.name.clone(),
                    agent: entry.agent.clone(),
                });
            }
        }
        Ok(file)
    }

    /// Reads `path`; a missing file at the default place is an empty one.
    pub fn load(path: &Path, required: bool) -> Result<FlowFile, AgentsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => FlowFile::parse(&text, path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(FlowFile::default())
            }
            Err(source) => Err(AgentsError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The agent to use: the one named, else the one hosting the namespace
    /// of `name` (longest match), else the first.
    pub fn choose(
        &self,
        explicit: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<(&Agent, Option<&str>)>, AgentsError> {
        let namespace = name.and_then(|name| {
            self.namespaces
                .iter()
                .filter(|entry| name == entry.name || name.ends_with(&format!(".{}", entry.name)))
                .max_by_key(|entry| entry.name.len())
        });
        let find = |agent: &str| self.agents.iter().find(|candidate| candidate.name == agent);
        if let Some(explicit) = explicit {
            let agent =
                find(explicit).ok_or_else(|| AgentsError::UnknownAgent(explicit.to_owned()))?;
            let namespace = self
                .namespaces
                .iter()
                .find(|entry| entry.agent == agent.name)
                .map(|e| e.name.as_str());
            return Ok(Some((agent, namespace)));
        }
        if let Some(entry) = namespace {
            return Ok(find(&entry.agent).map(|agent| (agent, Some(entry.name.as_str()))));
        }
        Ok(self.agents.first().map(|agent| {
            let namespace = self
                .namespaces
                .iter()
                .find(|entry| entry.agent == agent.name)
                .map(|e| e.name.as_str());
            (agent, namespace)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THESIS: &str = "
agents:
  - name: fnaa-unix
    fqdn: fnaa.unix.ar
    username: test
    password: test
    prefix: unix.ar-
  - name: fnaa-emiliano
    fqdn: fnaa.emiliano.ar
    username: test
    password: test
    prefix: emiliano.ar-
namespaces:
  - name: flows.unix.ar
    agent: fnaa-unix
  - name: flows.emiliano.ar
    agent: fnaa-emiliano
";

    #[test]
    fn thesis_file() -> Result<(), AgentsError> {
        let file = FlowFile::parse(THESIS, Path::new(".flow.yml"))?;
        assert_eq!(file.agents.len(), 2);
        let chosen = file
            .choose(None, Some("time.flows.emiliano.ar"))?
            .map(|(a, ns)| (a.name.clone(), ns.map(str::to_owned)));
        assert_eq!(
            chosen,
            Some(("fnaa-emiliano".into(), Some("flows.emiliano.ar".into())))
        );
        let chosen = file
            .choose(Some("fnaa-unix"), Some("time.flows.emiliano.ar"))?
            .map(|(a, _)| a.name.clone());
        assert_eq!(chosen.as_deref(), Some("fnaa-unix"));
        assert!(matches!(
            file.choose(Some("nope"), None),
            Err(AgentsError::UnknownAgent(_))
        ));
        assert!(FlowFile::parse("agents: []\nextra: 1\n", Path::new("x")).is_err());
        Ok(())
    }
}

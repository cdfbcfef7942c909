//! Other organisations' FNAAs, reached as thesis 7.4.3 shows: the flow's
//! FNAA found through DNS (PTR, `_flow._tcp` SRV and TXT, then the A/AAAA of
//! the SRV target, all asked of `[dns] nameserver`), a FNAP session over
//! TLS when the TXT record says `tls`, and the commands a subscriber sends.
//! The [`Peers`] of `fnaa serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fnaa_control::client::{Client, ClientError};
use fnaa_control::names::DnsName;
use fnaa_control::provision::{PeerError, Peers, RelayPeer, RemoteCopy};
use fnaa_control::service::CAPABILITY_TRACE;
use fnaa_control::store::{BrokerBinding, Capability, RemoteSource, RemoteState, TransferMode};
use fnaa_fns::{FlowUri, FnsResolver};
use schemars::JsonSchema;
use serde::Deserialize;

/// The `[peers]` section: how this host subscribes to flows of other
/// organisations' FNAAs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PeersConfig {
    /// CA certificates (PEM) that sign other FNAAs' certificates. Default:
    /// the system bundle `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
    /// Whether FNAP sessions to FNAAs whose DNS records do not say `tls`
    /// may go in clear text. Off by default: a subscription would then
    /// cross the network unprotected.
    pub allow_plaintext: bool,
    /// Longest wait for one step (connection, TLS, each reply), in ms.
    pub timeout_ms: u64,
    /// How often the host asks publishers whether they still serve its
    /// subscriptions (ended ones are shown `revoked`), in ms.
    pub check_interval_ms: u64,
    /// How the events of a new subscription cross: `auto` (the default)
    /// reads the publisher's broker directly when its FNAA offers that and
    /// the broker answers from here, and has them relayed over FNAP
    /// otherwise; `direct` or `relay` insist on one (a publisher that does
    /// not offer it is refused).
    pub mode: ModeChoice,
}

/// `[peers] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeChoice {
    #[default]
    Auto,
    Direct,
    Relay,
}

impl Default for PeersConfig {
    fn default() -> Self {
        PeersConfig {
            ca_file: None,
            allow_plaintext: false,
            timeout_ms: 10_000,
            check_interval_ms: 5_000,
            mode: ModeChoice::Auto,
        }
    }
}

const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Other FNAAs through DNS and FNAP.
pub struct FnapPeers {
    resolver: FnsResolver,
    tls: Arc<rustls::ClientConfig>,
    allow_plaintext: bool,
    timeout: Duration,
    mode: ModeChoice,
}

impl FnapPeers {
    /// Peers found through `resolver`, trusted as `config` says.
    pub fn new(resolver: FnsResolver, config: &PeersConfig) -> anyhow::Result<FnapPeers> {
        let pem = match &config.ca_file {
            Some(ca) => std::fs::read(ca).map_err(|e| {
                anyhow::anyhow!("[peers] ca_file: cannot read {}: {e}", ca.display())
            })?,
            // A host that never subscribes elsewhere must start without a
            // system bundle; sessions to other FNAAs then fail their TLS
            // check, naming the certificate.
            None => std::fs::read(SYSTEM_CA_BUNDLE).unwrap_or_else(|error| {
                tracing::warn!(%error, "no system CA bundle at {SYSTEM_CA_BUNDLE}: set [peers] ca_file to subscribe to other organisations' flows");
                Vec::new()
            }),
        };
        let ca = config
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let tls = fnaa_control::client::tls_config_from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("[peers] ca_file {}: {e}", ca.display()))?;
        Ok(FnapPeers {
            resolver,
            tls,
            allow_plaintext: config.allow_plaintext,
            timeout: Duration::from_millis(config.timeout_ms.max(100)),
            mode: config.mode,
        })
    }

    /// The FNAA of `flow`: its SRV target, address and whether it wants TLS.
    async fn find(&self, flow: &DnsName) -> Result<(String, SocketAddr, bool), PeerError> {
        let uri = FlowUri::parse(flow.as_str()).map_err(|e| PeerError::NoFnaa {
            flow: flow.to_string(),
            reason: e.to_string(),
        })?;
        let server = self.resolver.server_description();
        let fnaa = match self.resolver.resolve_flow_fnaa(&uri).await {
            Ok(fnaa) => fnaa,
            Err(error) if error.is_not_found() => {
                return Err(PeerError::NoFnaa {
                    flow: flow.to_string(),
                    reason: format!("{error} (asked {server})"),
                });
            }
            Err(error) => {
                return Err(PeerError::Unavailable {
                    step: format!("finding the FNAA of {flow} in DNS"),
                    reason: error.to_string(),
                });
            }
        };
        let addresses = match fnaa.addresses.as_slice() {
            [] => self
                .resolver
                .resolve_addresses(&fnaa.host)
                .await
                .map_err(|e| PeerError::Unavailable {
                    step: format!("resolving {} (the FNAA of {flow})", fnaa.host),
                    reason: format!("{e} (asked {server})"),
                })?,
            known => known.to_vec(),
        };
        let Some(address) = addresses.first() else {
            return Err(PeerError::Unavailable {
                step: format!("resolving {} (the FNAA of {flow})", fnaa.host),
                reason: format!("{server} has no A or AAAA record for it"),
            });
        };
        Ok((fnaa.host, SocketAddr::new(*address, fnaa.port), fnaa.tls))
    }

    /// A session logged in with `capability` at the FNAA `name`.
    async fn session(
        &self,
        name: &str,
        address: SocketAddr,
        tls: bool,
        capability: &Capability,
    ) -> Result<Client, PeerError> {
        let unavailable = |step: &str, error: ClientError| PeerError::Unavailable {
            step: format!("{step} {name} at {address}"),
            reason: error.to_string(),
        };
        let mut client = if tls {
            Client::connect_tls(address, name, self.tls.clone(), self.timeout, None)
                .await
                .map_err(|e| match e {
                    ClientError::Tls(_) => unavailable("TLS with", e),
                    e => unavailable("connecting to", e),
                })?
        } else if self.allow_plaintext {
            Client::connect(address, self.timeout, None)
                .await
                .map_err(|e| unavailable("connecting to", e))?
        } else {
            return Err(PeerError::Refused {
                fnaa: name.to_owned(),
                step: "a session".into(),
                code: 538,
                text: "its DNS records do not offer TLS, and [peers] allow_plaintext is off".into(),
            });
        };
        client
            .authenticate_anonymous(&format!("{CAPABILITY_TRACE}{}", capability.0))
            .await
            .map_err(|e| failed(name, "AUTHENTICATE ANONYMOUS", e))?;
        Ok(client)
    }

    /// A session, with its capability, at the FNAA a subscription was
    /// made at.
    async fn session_for(&self, source: &RemoteSource) -> Result<Client, PeerError> {
        self.session_at(
            &source.fnaa,
            &source.address,
            source.tls,
            &source.capability,
        )
        .await
    }

    /// A session at the FNAA that relays a copy flow.
    pub async fn session_with(&self, peer: &RelayPeer) -> Result<Client, PeerError> {
        self.session_at(&peer.fnaa, &peer.address, peer.tls, &peer.capability)
            .await
    }

    async fn session_at(
        &self,
        fnaa: &str,
        address: &str,
        tls: bool,
        capability: &Capability,
    ) -> Result<Client, PeerError> {
        // Recorded at SUBSCRIBE; unparsable only in a hand-edited store.
        let parsed: SocketAddr = address.parse().map_err(|_| PeerError::Unavailable {
            step: format!("reaching {fnaa}"),
            reason: format!("bad recorded address {address}"),
        })?;
        self.session(fnaa, parsed, tls, capability).await
    }
}

/// A failed command: refused for good on a `5xx`, unavailable otherwise.
fn failed(fnaa: &str, step: &str, error: ClientError) -> PeerError {
    match error {
        ClientError::Rejected { code, text } if code >= 500 => PeerError::Refused {
            fnaa: fnaa.to_owned(),
            step: step.to_owned(),
            code,
            text,
        },
        error => PeerError::Unavailable {
            step: format!("{step} at {fnaa}"),
            reason: error.to_string(),
        },
    }
}

/// The modes a copy flow's DESCRIBE offers (`modes=`); a publisher that
/// says nothing offers `direct` only.
fn offered_modes(lines: &[(String, String)]) -> Vec<TransferMode> {
    match lines.iter().find(|(k, _)| k == "modes") {
        Some((_, modes)) => modes
            .split(',')
            .filter_map(|m| TransferMode::from_name(m.trim()))
            .collect(),
        None => vec![TransferMode::Direct],
    }
}

impl FnapPeers {
    /// The mode of a new subscription to a copy on `binding`, among those
    /// its FNAA `fnaa` offers, as `[peers] mode` wants.
    async fn choose_mode(
        &self,
        fnaa: &str,
        offered: &[TransferMode],
        binding: &BrokerBinding,
    ) -> Result<TransferMode, PeerError> {
        let refuse = |wanted: &str| PeerError::Invalid {
            fnaa: fnaa.to_owned(),
            step: "DESCRIBE FLOW".into(),
            what: format!(
                "a copy offered as `{}` only, and [peers] mode is {wanted}",
                offered
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let direct = offered.contains(&TransferMode::Direct);
        let relay = offered.contains(&TransferMode::Relay);
        match self.mode {
            ModeChoice::Direct if direct => Ok(TransferMode::Direct),
            ModeChoice::Direct => Err(refuse("direct")),
            ModeChoice::Relay if relay => Ok(TransferMode::Relay),
            ModeChoice::Relay => Err(refuse("relay")),
            ModeChoice::Auto if direct && (!relay || self.reachable(binding).await) => {
                Ok(TransferMode::Direct)
            }
            ModeChoice::Auto if relay => Ok(TransferMode::Relay),
            ModeChoice::Auto => Err(refuse("auto")),
        }
    }

    /// Whether one of the broker servers of `binding` accepts a TCP
    /// connection from here within a few seconds.
    async fn reachable(&self, binding: &BrokerBinding) -> bool {
        let wait = self.timeout.min(Duration::from_secs(3));
        for server in &binding.servers {
            let server = server.trim();
            let server = server.split_once("://").map_or(server, |(_, rest)| rest);
            let connect = tokio::net::TcpStream::connect(server);
            if let Ok(Ok(_)) = tokio::time::timeout(wait, connect).await {
                return true;
            }
        }
        false
    }
}

/// The broker of a copy flow, from its DESCRIBE FLOW lines.
fn binding_of(
    fnaa: &str,
    copy: &DnsName,
    lines: &[(String, String)],
) -> Result<BrokerBinding, PeerError> {
    let get = |key: &str| {
        lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| PeerError::Invalid {
                fnaa: fnaa.to_owned(),
                step: format!("DESCRIBE FLOW {copy}"),
                what: format!("a description without a `{key}=` line"),
            })
    };
    Ok(BrokerBinding {
        broker_type: get("type")?,
        topic: get("topic")?,
        servers: get("server")?.split(',').map(str::to_owned).collect(),
        tls: get("tls").is_ok_and(|tls| tls == "yes"),
    })
}

#[async_trait::async_trait]
impl Peers for FnapPeers {
    async fn subscribe(
        &self,
        flow: &DnsName,
        capability: &Capability,
    ) -> Result<RemoteCopy, PeerError> {
        let (name, address, tls) = self.find(flow).await?;
        tracing::info!(%flow, fnaa = %name, %address, tls, "subscribing at the FNAA of a remote flow");
        let mut client = self.session(&name, address, tls, capability).await?;
        let copy = client
            .subscribe(flow.as_str(), None)
            .await
            .map_err(|e| failed(&name, &format!("SUBSCRIBE {flow}"), e))?;
        let copy = DnsName::parse(&copy).map_err(|e| PeerError::Invalid {
            fnaa: name.clone(),
            step: format!("SUBSCRIBE {flow}"),
            what: format!("an invalid copy flow name {copy:?}: {e}"),
        })?;
        let described = match client.describe_flow(copy.as_str()).await {
            Ok(lines) => match binding_of(&name, &copy, &lines) {
                Ok(binding) => self
                    .choose_mode(&name, &offered_modes(&lines), &binding)
                    .await
                    .map(|mode| (binding, mode)),
                Err(error) => Err(error),
            },
            Err(e) => Err(failed(&name, &format!("DESCRIBE FLOW {copy}"), e)),
        };
        let (binding, mode) = match described {
            Ok(described) => described,
            Err(error) => {
                // Leave nothing behind at the publisher.
                if let Err(undo) = client.command(&format!("UNSUBSCRIBE {copy}")).await {
                    tracing::warn!(%copy, error = %undo, "cannot end a half-made subscription at the publisher");
                }
                return Err(error);
            }
        };
        let _ = client.quit().await;
        Ok(RemoteCopy {
            copy,
            source: RemoteSource {
                fnaa: name,
                address: address.to_string(),
                tls,
                binding,
                capability: capability.clone(),
                state: RemoteState::Active,
                mode,
            },
        })
    }

    async fn unsubscribe(&self, source: &RemoteSource, copy: &DnsName) -> Result<(), PeerError> {
        let mut client = self.session_for(source).await?;
        let result = match client.command(&format!("UNSUBSCRIBE {copy}")).await {
            Ok(_) => Ok(()),
            // Already gone: revoked by the publisher meanwhile.
            Err(ClientError::Rejected { code: 550, .. }) => Ok(()),
            Err(e) => Err(failed(&source.fnaa, &format!("UNSUBSCRIBE {copy}"), e)),
        };
        let _ = client.quit().await;
        result
    }

    async fn abandon(&self, flow: &DnsName, capability: &Capability) -> Result<usize, PeerError> {
        let (name, address, tls) = self.find(flow).await?;
        let mut client = self.session(&name, address, tls, capability).await?;
        let listed = client
            .data_command("LIST SUBSCRIPTIONS")
            .await
            .map_err(|e| failed(&name, "LIST SUBSCRIPTIONS", e))?;
        let mut ended = 0;
        for line in listed {
            let Some(copy) = line.split(' ').next() else {
                continue;
            };
            match client.command(&format!("UNSUBSCRIBE {copy}")).await {
                Ok(_) | Err(ClientError::Rejected { code: 550, .. }) => ended += 1,
                Err(e) => return Err(failed(&name, &format!("UNSUBSCRIBE {copy}"), e)),
            }
        }
        let _ = client.quit().await;
        Ok(ended)
    }

    async fn copy_exists(&self, source: &RemoteSource, copy: &DnsName) -> Result<bool, PeerError> {
        let mut client = self.session_for(source).await?;
        let result = match client.command(&format!("DESCRIBE FLOW {copy}")).await {
            Ok(_) => Ok(true),
            Err(ClientError::Rejected { code: 550, .. }) => Ok(false),
            Err(e) => Err(failed(&source.fnaa, &format!("DESCRIBE FLOW {copy}"), e)),
        };
        let _ = client.quit().await;
        result
    }
}

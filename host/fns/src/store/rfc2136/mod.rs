//! RFC 2136 dynamic updates, signed with TSIG, to an external primary such
//! as BIND9 (which can sign the zone with DNSSEC inline signing).
//!
//! Each operation is ONE update message: the server applies all of it or
//! none of it (RFC 2136 §3.4), so a refused or failed update never leaves a
//! half-registered flow.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt as _;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::DnsStreamHandle as _;
use hickory_proto::op::{
    Message, MessageType, OpCode, Query, ResponseCode, SerialMessage, UpdateMessage as _,
};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::records::{
    ChangeSet, Deletion, FlowRecords, HostRecords, NamespaceRecords, publish_flow_changes,
    publish_host_changes, register_namespace_changes, unregister_namespace_changes,
    withdraw_flow_changes,
};
use crate::resolve::NameserverAddr;
use crate::store::{FlowRegistry, RegistryError, parse_zones, rcode_mnemonic, zone_for};
use crate::uri::{FlowUri, Namespace};

mod key;

pub use key::{TSIG_FUDGE_SECS, TsigAlgorithmName, TsigConfig, TsigKey, TsigSecret};

/// `[dns.registry]` with `type = "rfc2136"`: publish through dynamic updates
/// to an external primary DNS server.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// The primary server that accepts updates: `ip` or `ip:port` (port 53
    /// by default). Updates are sent over TCP.
    pub server: NameserverAddr,
    /// Zones this host may update, by apex (`people.syndeno.com`). A flow
    /// goes to the configured zone closest to its FQDN. Empty: each
    /// namespace is a zone of its own, as when it is delegated (thesis
    /// 4.1.2.2).
    #[serde(default)]
    pub zones: Vec<String>,
    /// The TSIG key that signs updates (`[dns.registry.tsig]`). Without it
    /// updates are unsigned, which BIND refuses unless `allow-update` lists
    /// this host's address.
    #[serde(default)]
    pub tsig: Option<TsigConfig>,
    /// How long to wait for the server's answer, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5_000
}

/// Publishes through RFC 2136 updates. See the module documentation.
pub struct Rfc2136Registry {
    server: SocketAddr,
    zones: Vec<Name>,
    key: Option<(TsigKey, TSigner)>,
    timeout: Duration,
}

impl std::fmt::Debug for Rfc2136Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136Registry")
            .field("server", &self.server)
            .field("zones", &self.zones)
            .field("key", &self.key.as_ref().map(|(key, _)| key))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Rfc2136Registry {
    /// A registry from its configuration (reads the key file, if any).
    pub fn new(config: &Rfc2136Config) -> Result<Rfc2136Registry, RegistryError> {
        let key = config.tsig.as_ref().map(TsigConfig::key).transpose()?;
        let mut registry = Rfc2136Registry::with_key(config.server.0, &config.zones, key)?;
        registry.timeout = Duration::from_millis(config.timeout_ms.max(1));
        Ok(registry)
    }

    /// A registry updating `zones` on `server`, signing with `key` (unsigned
    /// without one).
    pub fn with_key(
        server: SocketAddr,
        zones: &[String],
        key: Option<TsigKey>,
    ) -> Result<Rfc2136Registry, RegistryError> {
        let key = match key {
            Some(key) => {
                let signer = key.signer()?;
                Some((key, signer))
            }
            None => None,
        };
        Ok(Rfc2136Registry {
            server,
            zones: parse_zones(zones)?,
            key,
            timeout: Duration::from_millis(default_timeout_ms()),
        })
    }

    /// Sends `changes` to the zone holding `owner` as one update message.
    async fn apply(
        &self,
        owner: &Name,
        fallback_zone: &Name,
        changes: &ChangeSet,
    ) -> Result<(), RegistryError> {
        let zone = zone_for(owner, &self.zones, fallback_zone)?;
        if let Some(outside) = changes.names().find(|name| !zone.zone_of(name)) {
            return Err(RegistryError::NoZone {
                name: outside.to_string(),
                zones: zone.to_string(),
            });
        }
        let message = update_message(&zone, changes);
        tracing::debug!(
            server = %self.server, zone = %zone,
            deletions = changes.deletions.len(), additions = changes.additions.len(),
            signed = self.key.is_some(), "sending DNS update"
        );
        self.exchange(&zone, message).await
    }

    /// Signs, sends and checks one update.
    async fn exchange(&self, zone: &Name, mut message: Message) -> Result<(), RegistryError> {
        let zone_text = zone.to_string();
        let transport = |reason: String| RegistryError::Transport {
            server: self.server,
            zone: zone_text.clone(),
            reason,
        };
        let timeout = || RegistryError::Timeout {
            server: self.server,
            zone: zone_text.clone(),
            timeout_ms: self.timeout.as_millis(),
        };
        let mut verifier = None;
        if let Some((_, signer)) = &self.key {
            verifier = message
                .finalize(signer, unix_time())
                .map_err(|error| RegistryError::Key(format!("cannot sign the update: {error}")))?;
        }
        let request = message
            .to_vec()
            .map_err(|error| transport(format!("cannot encode the update: {error}")))?;

        // hickory's TCP framing, without its multiplexer: the multiplexer
        // turns a refused TSIG update (an unsigned NOTAUTH/BADSIG answer)
        // into an opaque verification error, and the rcode must be reported.
        let (connect, mut handle) = TcpClientStream::new(
            self.server,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::default(),
        );
        let mut stream = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| timeout())?
            .map_err(|error| transport(error.to_string()))?;
        handle
            .send(SerialMessage::new(request, self.server))
            .map_err(|error| transport(error.to_string()))?;
        let answer = loop {
            let received = tokio::time::timeout(self.timeout, stream.next())
                .await
                .map_err(|_| timeout())?
                .ok_or_else(|| transport("the server closed the connection".to_owned()))?
                .map_err(|error| transport(error.to_string()))?;
            let (bytes, _) = received.into_parts();
            let response =
                Message::from_vec(&bytes).map_err(|error| RegistryError::BadResponse {
                    server: self.server,
                    zone: zone_text.clone(),
                    reason: format!("undecodable answer: {error}"),
                })?;
            if response.metadata.id == message.metadata.id {
                break (bytes, response);
            }
        };
        let (bytes, response) = answer;

        let rcode = response.metadata.response_code;
        if rcode != ResponseCode::NoError {
            let tsig_error = response
                .signature()
                .and_then(|tsig| tsig.data.error.as_ref())
                .map(|error| format!("{error:?}").to_ascii_uppercase());
            return Err(RegistryError::UpdateRefused {
                server: self.server,
                zone: zone_text,
                rcode,
                hint: refusal_hint(rcode, tsig_error.as_deref(), self.key.is_some()),
                tsig_error,
            });
        }
        if let Some(mut verifier) = verifier {
            verifier
                .verify(&bytes)
                .map_err(|error| RegistryError::BadResponse {
                    server: self.server,
                    zone: zone_text,
                    reason: format!("TSIG verification failed: {error}"),
                })?;
        }
        Ok(())
    }
}

#[async_trait]
impl FlowRegistry for Rfc2136Registry {
    async fn publish_flow(&self, flow: &FlowRecords) -> Result<(), RegistryError> {
        let changes = publish_flow_changes(flow)?;
        let namespace = crate::records::fqdn(flow.uri.namespace().as_str())?;
        let owner = crate::records::fqdn(flow.uri.fqdn())?;
        self.apply(&owner, &namespace, &changes).await
    }

    async fn withdraw_flow(&self, uri: &FlowUri) -> Result<(), RegistryError> {
        let changes = withdraw_flow_changes(uri)?;
        let namespace = crate::records::fqdn(uri.namespace().as_str())?;
        let owner = crate::records::fqdn(uri.fqdn())?;
        self.apply(&owner, &namespace, &changes).await
    }

    async fn register_namespace(&self, records: &NamespaceRecords) -> Result<(), RegistryError> {
        let namespace = crate::records::fqdn(records.namespace.as_str())?;
        let zone = zone_for(&namespace, &self.zones, &namespace)?;
        let changes = register_namespace_changes(records, &zone)?;
        self.apply(&namespace, &namespace, &changes).await
    }

    async fn unregister_namespace(
        &self,
        namespace: &Namespace,
        instance: &str,
    ) -> Result<(), RegistryError> {
        let changes = unregister_namespace_changes(namespace, instance)?;
        let name = crate::records::fqdn(namespace.as_str())?;
        self.apply(&name, &name, &changes).await
    }

    async fn publish_host(&self, host: &HostRecords) -> Result<Option<String>, RegistryError> {
        let name = host.name()?;
        // Only the configured zones: without them there is no zone known
        // to hold a host name (namespaces are zones of their own).
        let Some(zone) = self
            .zones
            .iter()
            .filter(|zone| zone.zone_of(&name))
            .max_by_key(|zone| zone.num_labels())
            .cloned()
        else {
            return Ok(None);
        };
        let changes = publish_host_changes(host)?;
        self.apply(&name, &zone, &changes).await?;
        Ok(Some(zone.to_ascii().trim_end_matches('.').to_owned()))
    }
}

/// The update message of `changes` to `zone` (RFC 2136 §2.5): deletions
/// first, then additions, no prerequisites (publishing replaces).
fn update_message(zone: &Name, changes: &ChangeSet) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Update);
    message.add_zone(Query::query(zone.clone(), RecordType::SOA));
    for deletion in &changes.deletions {
        let record = match deletion {
            // §2.5.2: class ANY, type of the RRset, no data.
            Deletion::RrSet { name, record_type } => {
                let mut record = Record::update0(name.clone(), 0, *record_type);
                record.dns_class = DNSClass::ANY;
                record
            }
            // §2.5.3: class ANY, type ANY, no data.
            Deletion::AllAt(name) => {
                let mut record = Record::update0(name.clone(), 0, RecordType::ANY);
                record.dns_class = DNSClass::ANY;
                record
            }
            // §2.5.4: class NONE, the record's data, TTL 0.
            Deletion::Record(record) => {
                let mut record = record.clone();
                record.dns_class = DNSClass::NONE;
                record.ttl = 0;
                record
            }
        };
        message.add_update(record);
    }
    for addition in &changes.additions {
        let mut record: Record<RData> = addition.clone();
        record.dns_class = DNSClass::IN;
        message.add_update(record);
    }
    message
}

/// The usual cause of a refusal, for the operator.
fn refusal_hint(rcode: ResponseCode, tsig_error: Option<&str>, signed: bool) -> &'static str {
    match (rcode, tsig_error) {
        (_, Some("BADSIG")) => "the TSIG secret differs from the server's key of that name",
        (_, Some("BADKEY")) => "the server has no key of that name and algorithm",
        (_, Some("BADTIME")) => "the clocks of this host and the server differ too much",
        (ResponseCode::Refused, _) if !signed => {
            "the update is unsigned; configure [dns.registry.tsig] with a key the zone's allow-update or update-policy accepts"
        }
        (ResponseCode::Refused, _) => {
            "the key is not allowed to update this zone (check allow-update / update-policy), or the server does not serve it as primary"
        }
        (ResponseCode::NotAuth, _) => {
            "the server is not authoritative for the zone, or rejected the signature"
        }
        (ResponseCode::NotZone, _) => "a name of the update lies outside the zone",
        (ResponseCode::ServFail, _) => "the server failed to apply it (see its log)",
        (ResponseCode::NotImp, _) => "the server does not implement dynamic updates",
        (ResponseCode::FormErr, _) => "the server could not parse the update",
        _ => "see the server's log",
    }
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

impl RegistryError {
    /// The response code of a refused update, if that is what happened.
    pub fn refused_rcode(&self) -> Option<ResponseCode> {
        match self {
            RegistryError::UpdateRefused { rcode, .. } => Some(*rcode),
            _ => None,
        }
    }

    /// The response code's mnemonic of a refused update (`REFUSED`).
    pub fn refused_mnemonic(&self) -> Option<&'static str> {
        self.refused_rcode().map(rcode_mnemonic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{BrokerKind, BrokerRecords, ServiceEndpoint};

    #[test]
    fn one_message_carries_the_whole_flow() {
        let uri = FlowUri::parse("flow://time.flows.unix.ar").expect("uri");
        let flow = FlowRecords::new(uri, ServiceEndpoint::new("fnaa.unix.ar", 61000)).with_broker(
            BrokerRecords::new(BrokerKind::Kafka, ServiceEndpoint::new("kf1.unix.ar", 9092)),
        );
        let changes = publish_flow_changes(&flow).expect("changes");
        let zone = crate::records::fqdn("flows.unix.ar").expect("zone");
        let message = update_message(&zone, &changes);
        assert_eq!(message.metadata.op_code, OpCode::Update);
        assert_eq!(message.zones().len(), 1);
        assert!(message.prerequisites().is_empty());
        // 3 deletions, then PTR, SRV, TXT, queue SRV, queue TXT.
        assert_eq!(message.updates().len(), 8);
        assert!(
            message.updates()[..3]
                .iter()
                .all(|record| record.dns_class == DNSClass::ANY)
        );
        assert!(
            message.updates()[3..]
                .iter()
                .all(|record| record.dns_class == DNSClass::IN)
        );
    }

    #[test]
    fn the_registry_debug_hides_the_secret() {
        let key = TsigKey {
            name: "fnaa-update".into(),
            algorithm: TsigAlgorithmName::HmacSha256,
            secret: TsigSecret::new(b"super-secret-material".to_vec()),
        };
        let registry =
            Rfc2136Registry::with_key("127.0.0.1:53".parse().expect("addr"), &[], Some(key))
                .expect("registry");
        let shown = format!("{registry:?}");
        assert!(shown.contains("fnaa-update"), "{shown}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }

    #[test]
    fn refusals_read_well() {
        let error = RegistryError::UpdateRefused {
            server: "127.0.0.1:53".parse().expect("addr"),
            zone: "flows.unix.ar.".into(),
            rcode: ResponseCode::NotAuth,
            tsig_error: Some("BADSIG".into()),
            hint: refusal_hint(ResponseCode::NotAuth, Some("BADSIG"), true),
        };
        let text = error.to_string();
        assert!(
            text.contains("NOTAUTH") && text.contains("BADSIG"),
            "{text}"
        );
        assert_eq!(error.refused_mnemonic(), Some("NOTAUTH"));
    }
}

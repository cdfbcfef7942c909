//! The embedded authoritative DNS server: the host serves its namespace
//! zones itself, from memory, over UDP and TCP (hickory-server).
//!
//! Records published or withdrawn are visible to the next query: each
//! change is applied under the zone's write lock, all of it at once, and
//! bumps the zone's SOA serial.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hickory_net::runtime::Time;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Mutex, RwLock};

use crate::records::{
    ChangeSet, Deletion, FlowRecords, HostRecords, NamespaceRecords, fqdn, publish_flow_changes,
    publish_host_changes, register_namespace_changes, unregister_namespace_changes,
    withdraw_flow_changes,
};
use crate::store::{FlowRegistry, RegistryError, parse_zones};
use crate::uri::{FlowUri, Namespace};

/// TTL of the SOA, NS and glue records of the zones created here.
const ZONE_RECORD_TTL: u32 = 3600;
/// Buffered responses per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// Tries to find a port free for both UDP and TCP when port 0 is asked.
const FREE_PORT_ATTEMPTS: usize = 20;

/// `[dns.registry]` with `type = "embedded"` (the default): this host is the
/// authoritative DNS server of its namespaces.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Address the DNS server listens on, UDP and TCP. The parent zone
    /// delegates the namespaces to it, so in production it is a public
    /// address on port 53 (`0.0.0.0:53`, which needs CAP_NET_BIND_SERVICE).
    /// The default stays on loopback. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Zones served from the start, by apex (`people.syndeno.com`).
    pub zones: Vec<String>,
    /// Serve a new zone, with the namespace as apex, when a flow or
    /// namespace is published that no served zone contains. Off: such
    /// publications fail.
    pub create_zones: bool,
    /// Host name of this name server, written in the SOA and NS records of
    /// the zones created here. Default: `ns.<zone>`.
    pub nameserver: Option<String>,
    /// Addresses of `nameserver`, published (as glue) when it lies inside a
    /// zone created here.
    pub nameserver_addresses: Vec<IpAddr>,
    /// Mailbox of the zones' administrator, in SOA form
    /// (`hostmaster.syndeno.com` for hostmaster@syndeno.com). Default:
    /// `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// How long resolvers cache a "no such flow" answer (SOA minimum), in
    /// seconds. Short, since flows come and go.
    pub negative_ttl_secs: u32,
    /// Zone files (RFC 1035 master format) served as well, each read once at
    /// start; flows can be published into them too.
    pub zone_files: Vec<ZoneFileConfig>,
    /// TCP connections idle this long are closed, in seconds.
    pub tcp_idle_timeout_secs: u64,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5300),
            zones: Vec::new(),
            create_zones: true,
            nameserver: None,
            nameserver_addresses: Vec::new(),
            hostmaster: None,
            negative_ttl_secs: 60,
            zone_files: Vec::new(),
            tcp_idle_timeout_secs: 10,
        }
    }
}

/// A zone file to serve.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneFileConfig {
    /// Apex of the zone (`$ORIGIN`), such as `syndeno.com`.
    pub origin: String,
    /// The file.
    pub path: PathBuf,
}

/// The embedded authoritative server and its zones. Dropping it stops the
/// server.
pub struct EmbeddedRegistry {
    catalog: Arc<RwLock<Catalog>>,
    zones: Mutex<BTreeMap<Name, Arc<InMemoryZoneHandler>>>,
    config: EmbeddedConfig,
    udp_address: SocketAddr,
    tcp_address: SocketAddr,
    server: Mutex<Option<Server<SharedCatalog>>>,
}

impl std::fmt::Debug for EmbeddedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRegistry")
            .field("udp_address", &self.udp_address)
            .field("tcp_address", &self.tcp_address)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EmbeddedRegistry {
    /// Loads the configured zones and starts serving them.
    pub async fn start(config: &EmbeddedConfig) -> Result<EmbeddedRegistry, RegistryError> {
        let catalog = Arc::new(RwLock::new(Catalog::new()));
        let (udp, tcp) = bind(config.listen).await?;
        let listen_error = |error: std::io::Error| RegistryError::Listen {
            address: config.listen,
            reason: error.to_string(),
        };
        let udp_address = udp.local_addr().map_err(listen_error)?;
        let tcp_address = tcp.local_addr().map_err(listen_error)?;

        let registry = EmbeddedRegistry {
            catalog: catalog.clone(),
            zones: Mutex::new(BTreeMap::new()),
            config: config.clone(),
            udp_address,
            tcp_address,
            server: Mutex::new(None),
        };
        for zone in parse_zones(&config.zones)? {
            registry.serve(registry.new_zone(&zone)?).await;
        }
        for file in &config.zone_files {
            registry.serve(load_zone_file(file)?).await;
        }

        let mut server = Server::new(SharedCatalog(catalog));
        server.register_socket(udp);
        server.register_listener(
            tcp,
            Duration::from_secs(config.tcp_idle_timeout_secs.max(1)),
            TCP_RESPONSE_BUFFER,
        );
        *registry.server.lock().await = Some(server);
        tracing::info!(%udp_address, %tcp_address, "embedded DNS server listening");
        Ok(registry)
    }

    /// Where the server answers over UDP (and, same port, TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.udp_address
    }

    /// The apexes of the zones served, in order, without the trailing dot.
    pub async fn zones(&self) -> Vec<String> {
        self.zones
            .lock()
            .await
            .keys()
            .map(|apex| apex.to_ascii().trim_end_matches('.').to_owned())
            .collect()
    }

    /// Stops answering and waits for the listeners to close.
    pub async fn shutdown(&self) {
        if let Some(mut server) = self.server.lock().await.take()
            && let Err(error) = server.shutdown_gracefully().await
        {
            tracing::warn!(%error, "embedded DNS server stopped with an error");
        }
    }

    /// Adds a zone handler to the catalog and the zone table.
    async fn serve(&self, handler: InMemoryZoneHandler) {
        let apex = Name::from(handler.origin().clone());
        let handler = Arc::new(handler);
        let as_zone: Arc<dyn ZoneHandler> = handler.clone();
        self.catalog
            .write()
            .await
            .upsert(LowerName::new(&apex), vec![as_zone]);
        self.zones.lock().await.insert(apex, handler);
    }

    /// A new zone at `apex` with its SOA, NS and glue.
    fn new_zone(&self, apex: &Name) -> Result<InMemoryZoneHandler, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidZone {
            zone: apex.to_string(),
            reason,
        };
        let host_in_zone = |configured: &Option<String>, default_label: &str| match configured {
            Some(host) => fqdn(host.strip_suffix('.').unwrap_or(host)),
            None => apex.prepend_label(default_label).map_err(|error| {
                crate::records::RecordError::InvalidName {
                    name: format!("{default_label}.{apex}"),
                    reason: error.to_string(),
                }
            }),
        };
        let nameserver =
            host_in_zone(&self.config.nameserver, "ns").map_err(|e| invalid(e.to_string()))?;
        let hostmaster = host_in_zone(&self.config.hostmaster, "hostmaster")
            .map_err(|e| invalid(e.to_string()))?;
        let serial = initial_serial();
        let soa = SOA::new(
            nameserver.clone(),
            hostmaster,
            serial,
            3600,
            600,
            604_800,
            self.config.negative_ttl_secs,
        );
        let mut records = vec![
            Record::from_rdata(apex.clone(), ZONE_RECORD_TTL, RData::SOA(soa)),
            Record::from_rdata(
                apex.clone(),
                ZONE_RECORD_TTL,
                RData::NS(NS(nameserver.clone())),
            ),
        ];
        if apex.zone_of(&nameserver) {
            for address in &self.config.nameserver_addresses {
                let data = match address {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                records.push(Record::from_rdata(
                    nameserver.clone(),
                    ZONE_RECORD_TTL,
                    data,
                ));
            }
        }
        let mut sets: BTreeMap<RrKey, RecordSet> = BTreeMap::new();
        for record in records {
            let key = RrKey::new(LowerName::new(&record.name), record.record_type());
            sets.entry(key)
                .or_insert_with(|| {
                    RecordSet::new(record.name.clone(), record.record_type(), serial)
                })
                .insert(record, serial);
        }
        InMemoryZoneHandler::new(apex.clone(), sets, ZoneType::Primary, AxfrPolicy::Deny)
            .map_err(invalid)
    }

    /// The zone holding `owner`, created at `namespace` if allowed.
    async fn zone_for(
        &self,
        owner: &Name,
        namespace: &Name,
    ) -> Result<Arc<InMemoryZoneHandler>, RegistryError> {
        {
            let zones = self.zones.lock().await;
            let closest = zones
                .iter()
                .filter(|(apex, _)| apex.zone_of(owner))
                .max_by_key(|(apex, _)| apex.num_labels());
            if let Some((_, handler)) = closest {
                return Ok(handler.clone());
            }
            if !self.config.create_zones {
                return Err(RegistryError::NoZone {
                    name: owner.to_string(),
                    zones: zones
                        .keys()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        tracing::info!(zone = %namespace, "serving a new namespace zone");
        self.serve(self.new_zone(namespace)?).await;
        self.zones
            .lock()
            .await
            .get(namespace)
            .cloned()
            .ok_or_else(|| RegistryError::InvalidZone {
                zone: namespace.to_string(),
                reason: "the zone vanished while being created".to_owned(),
            })
    }

    async fn apply(
        &self,
        owner: &Name,
        namespace: &Name,
        changes: impl FnOnce(&Name) -> Result<ChangeSet, RegistryError>,
    ) -> Result<(), RegistryError> {
        let zone = self.zone_for(owner, namespace).await?;
        let apex = Name::from(zone.origin().clone());
        let changes = changes(&apex)?;
        if let Some(outside) = changes.names().find(|name| !apex.zone_of(name)) {
            return Err(RegistryError::NoZone {
                name: outside.to_string(),
                zones: apex.to_string(),
            });
        }
        let mut records = zone.records_mut().await;
        let serial = bump_serial(&mut records, &apex);
        apply_changes(&mut records, &changes, serial);
        tracing::debug!(zone = %apex, serial, "zone updated");
        Ok(())
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        // Dropping the server aborts its tasks; say so for whoever reads logs.
        if self.server.get_mut().is_some() {
            tracing::debug!(address = %self.udp_address, "embedded DNS server stopped");
        }
    }
}

#[async_trait]
impl FlowRegistry for EmbeddedRegistry {
    async fn publish_flow(&self, flow: &FlowRecords) -> Result<(), RegistryError> {
        let changes = publish_flow_changes(flow)?;
        let owner = fqdn(flow.uri.fqdn())?;
        let namespace = fqdn(flow.uri.namespace().as_str())?;
        self.apply(&owner, &namespace, |_| Ok(changes)).await
    }

    async fn withdraw_flow(&self, uri: &FlowUri) -> Result<(), RegistryError> {
        let changes = withdraw_flow_changes(uri)?;
        let owner = fqdn(uri.fqdn())?;
        let namespace = fqdn(uri.namespace().as_str())?;
        if self
            .zones
            .lock()
            .await
            .keys()
            .all(|apex| !apex.zone_of(&owner))
        {
            // Nothing is served for it, so nothing to remove.
            return Ok(());
        }
        self.apply(&owner, &namespace, |_| Ok(changes)).await
    }

    async fn register_namespace(&self, records: &NamespaceRecords) -> Result<(), RegistryError> {
        let namespace = fqdn(records.namespace.as_str())?;
        self.apply(&namespace, &namespace, |zone| {
            Ok(register_namespace_changes(records, zone)?)
        })
        .await
    }

    async fn publish_host(&self, host: &HostRecords) -> Result<Option<String>, RegistryError> {
        let name = host.name()?;
        let zone = self
            .zones
            .lock()
            .await
            .keys()
            .filter(|apex| apex.zone_of(&name))
            .max_by_key(|apex| apex.num_labels())
            .cloned();
        let Some(zone) = zone else {
            return Ok(None);
        };
        let changes = publish_host_changes(host)?;
        self.apply(&name, &zone, |_| Ok(changes)).await?;
        Ok(Some(zone.to_ascii().trim_end_matches('.').to_owned()))
    }

    async fn unregister_namespace(
        &self,
        namespace: &Namespace,
        instance: &str,
    ) -> Result<(), RegistryError> {
        let changes = unregister_namespace_changes(namespace, instance)?;
        let name = fqdn(namespace.as_str())?;
        if self
            .zones
            .lock()
            .await
            .keys()
            .all(|apex| !apex.zone_of(&name))
        {
            return Ok(());
        }
        self.apply(&name, &name, |_| Ok(changes)).await
    }
}

/// Applies a change set to a zone's records (deletions first).
fn apply_changes(records: &mut BTreeMap<RrKey, Arc<RecordSet>>, changes: &ChangeSet, serial: u32) {
    for deletion in &changes.deletions {
        match deletion {
            Deletion::RrSet { name, record_type } => {
                records.remove(&RrKey::new(LowerName::new(name), *record_type));
            }
            Deletion::AllAt(name) => {
                let name = LowerName::new(name);
                records.retain(|key, _| key.name != name);
            }
            Deletion::Record(record) => {
                let key = RrKey::new(LowerName::new(&record.name), record.record_type());
                if let Some(set) = records.get_mut(&key) {
                    Arc::make_mut(set).remove(record, serial);
                    if set.is_empty() {
                        records.remove(&key);
                    }
                }
            }
        }
    }
    for record in &changes.additions {
        let key = RrKey::new(LowerName::new(&record.name), record.record_type());
        let set = records.entry(key).or_insert_with(|| {
            Arc::new(RecordSet::new(
                record.name.clone(),
                record.record_type(),
                serial,
            ))
        });
        Arc::make_mut(set).insert(record.clone(), serial);
    }
}

/// Increments the SOA serial of the zone at `apex` and returns it.
fn bump_serial(records: &mut BTreeMap<RrKey, Arc<RecordSet>>, apex: &Name) -> u32 {
    let key = RrKey::new(LowerName::new(apex), RecordType::SOA);
    let Some(set) = records.get_mut(&key) else {
        return initial_serial();
    };
    let Some(mut record) = set.records_without_rrsigs().next().cloned() else {
        return initial_serial();
    };
    let RData::SOA(soa) = &mut record.data else {
        return initial_serial();
    };
    soa.increment_serial();
    let serial = soa.serial;
    let mut updated = RecordSet::new(apex.clone(), RecordType::SOA, serial);
    updated.insert(record, serial);
    *set = Arc::new(updated);
    serial
}

/// SOA serial of a new zone: the time, as BIND's `serial-update-method
/// unixtime`, so that restarts keep serials increasing.
fn initial_serial() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

fn load_zone_file(file: &ZoneFileConfig) -> Result<InMemoryZoneHandler, RegistryError> {
    let error = |reason: String| RegistryError::ZoneFile {
        path: file.path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&file.path).map_err(|e| error(e.to_string()))?;
    let origin = fqdn(file.origin.strip_suffix('.').unwrap_or(&file.origin))
        .map_err(|e| error(e.to_string()))?;
    let (origin, records) = Parser::new(text, Some(file.path.clone()), Some(origin))
        .parse()
        .map_err(|e| error(e.to_string()))?;
    InMemoryZoneHandler::new(origin, records, ZoneType::Primary, AxfrPolicy::Deny).map_err(error)
}

/// Binds UDP and TCP on the same address; with port 0, on a port free for
/// both.
async fn bind(address: SocketAddr) -> Result<(UdpSocket, TcpListener), RegistryError> {
    let listen_error = |error: std::io::Error| RegistryError::Listen {
        address,
        reason: error.to_string(),
    };
    let attempts = if address.port() == 0 {
        FREE_PORT_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(address).await.map_err(listen_error)?;
        let port = udp.local_addr().map_err(listen_error)?.port();
        match TcpListener::bind(SocketAddr::new(address.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // The OS picked a UDP port whose TCP twin is taken: pick again.
            Err(error) => last_error = Some(error),
        }
    }
    Err(listen_error(last_error.unwrap_or_else(|| {
        std::io::Error::other("no port free for both UDP and TCP")
    })))
}

/// The catalog behind a lock, so zones can be added while serving.
struct SharedCatalog(Arc<RwLock<Catalog>>);

#[async_trait]
impl RequestHandler for SharedCatalog {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let catalog = self.0.read().await;
        catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

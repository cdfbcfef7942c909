//! Finding the FNAA (explicit address, or DNS through fnaa-fns), opening
//! the session and authenticating.

use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use fnaa_control::client::{Client, Trace};

use super::agents::{Agent, FlowFile, MechanismChoice, TlsMode};
use super::cli::Global;
use super::exit::{self, Failure};

/// The port tried when DNS has no SRV record for the agent.
pub const FALLBACK_PORT: u16 = 61000;

/// The host on this machine, as `fnaa serve` listens by default.
pub const LOCAL_FNAA: &str = "127.0.0.1:61000";

/// Whether a command without an agent goes to the host on this machine:
/// nothing to look up in DNS (no subject, or one that is no flow or
/// namespace name), or a name under `localhost` (RFC 6761: always this
/// machine).
fn is_local(subject: Option<&str>) -> bool {
    match subject {
        None => true,
        Some(name) => {
            let name = name.trim_end_matches('.');
            !name.contains('.') || name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// An authenticated session and what was chosen for it.
pub struct Session {
    pub client: Client,
    pub agent: Option<Agent>,
}

fn debug(enabled: bool, text: &str) {
    if enabled {
        eprintln!("{text}");
    }
}

/// Where to connect.
struct Endpoint {
    address: SocketAddr,
    server_name: String,
    dns_says_tls: bool,
}

async fn lookup(host_port: &str) -> Result<Endpoint, Failure> {
    let server_name = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host)
        .trim_matches(['[', ']'])
        .to_owned();
    let mut addresses = tokio::net::lookup_host(host_port).await.map_err(|error| {
        Failure::new(exit::NOHOST, format!("cannot resolve {host_port}: {error}"))
    })?;
    let address = addresses
        .next()
        .ok_or_else(|| Failure::new(exit::NOHOST, format!("{host_port} has no address")))?;
    Ok(Endpoint {
        address,
        server_name,
        dns_says_tls: false,
    })
}

async fn resolve(
    global: &Global,
    agent: Option<&Agent>,
    namespace: Option<&str>,
    subject: Option<&str>,
) -> Result<Endpoint, Failure> {
    if let Some(server) = global
        .server
        .as_deref()
        .or(agent.and_then(|a| a.server.as_deref()))
    {
        debug(global.debug, &format!("Using server {server}"));
        return lookup(server).await;
    }
    if agent.is_none() && is_local(subject) {
        debug(
            global.debug,
            &format!("No agent for this command: using the host on this machine, {LOCAL_FNAA}"),
        );
        return lookup(LOCAL_FNAA).await;
    }
    let options = fnaa_fns::ResolverOptions {
        nameserver: match &global.nameserver {
            Some(text) => Some(
                text.parse()
                    .map_err(|error: String| Failure::new(exit::USAGE, error))?,
            ),
            None => None,
        },
        ..Default::default()
    };
    let resolver = fnaa_fns::FnsResolver::new(options)
        .map_err(|error| Failure::new(exit::NOHOST, format!("cannot set up DNS: {error}")))?;
    let nameserver = global
        .nameserver
        .as_deref()
        .unwrap_or("the system resolver");
    // A flow names its own FNAA (annex B): ask for it first, and fall back
    // to the FNAA of the namespace (DNS-SD) when the flow has no records.
    let by_flow = match subject.filter(|s| s.contains('.')) {
        Some(flow) => {
            debug(
                global.debug,
                &format!("Resolving the FNAA of flow {flow} using {nameserver}"),
            );
            Some(match fnaa_fns::FlowUri::parse(flow) {
                Ok(uri) => resolver
                    .resolve_flow_fnaa(&uri)
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            })
        }
        None => None,
    };
    let found = match (by_flow, namespace) {
        (Some(Ok(fnaa)), _) => Ok(fnaa),
        (by_flow, Some(namespace)) => {
            if let Some(Err(reason)) = by_flow {
                debug(global.debug, &format!("No flow records ({reason})"));
            }
            debug(
                global.debug,
                &format!("Resolving the FNAA of namespace {namespace} using {nameserver}"),
            );
            match fnaa_fns::Namespace::parse(namespace) {
                Ok(parsed) => resolver
                    .resolve_namespace_fnaa(&parsed)
                    .await
                    .map(|found| found.fnaa)
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            }
        }
        (Some(Err(reason)), None) => Err(reason),
        (None, None) => Err("nothing to look up".to_owned()),
    };
    match found {
        Ok(fnaa) => {
            debug(
                global.debug,
                &format!(
                    "FNAA resolved to {}:{} (tls: {})",
                    fnaa.host, fnaa.port, fnaa.tls
                ),
            );
            let address = address_of(
                global.debug,
                &resolver,
                &fnaa.host,
                fnaa.port,
                &fnaa.addresses,
            )
            .await?;
            Ok(Endpoint {
                address,
                server_name: fnaa.host,
                dns_says_tls: fnaa.tls,
            })
        }
        Err(reason) => {
            let Some(agent) = agent else {
                return Err(Failure::new(
                    exit::NOHOST,
                    format!(
                        "cannot find the FNAA ({reason}); give --server or an agent in the agents file"
                    ),
                ));
            };
            debug(
                global.debug,
                &format!(
                    "No SRV answer ({reason}); trying {}:{FALLBACK_PORT}",
                    agent.fqdn
                ),
            );
            let host = agent.fqdn.trim_end_matches('.');
            let address = address_of(global.debug, &resolver, host, FALLBACK_PORT, &[]).await?;
            Ok(Endpoint {
                address,
                server_name: host.to_owned(),
                dns_says_tls: false,
            })
        }
    }
}

/// The address of the SRV target `host`: its A/AAAA records asked of the
/// nameserver that gave the SRV record (`known` when the resolver already
/// has them), as thesis 7.4.1 shows; then, for names only known locally,
/// the system resolver (hosts file).
async fn address_of(
    trace: bool,
    resolver: &fnaa_fns::FnsResolver,
    host: &str,
    port: u16,
    known: &[IpAddr],
) -> Result<SocketAddr, Failure> {
    let server = resolver.server_description();
    debug(
        trace,
        &format!("Resolving A for {host}. using server {server}"),
    );
    let found = match known {
        [] => resolver.resolve_addresses(host).await,
        known => Ok(known.to_vec()),
    };
    let reason = match found {
        Ok(addresses) => {
            if let Some(first) = addresses.first() {
                let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                debug(
                    trace,
                    &format!(
                        "Resolved A to {} for {host}. using server {server}",
                        shown.join(", ")
                    ),
                );
                return Ok(SocketAddr::new(*first, port));
            }
            format!("{server} has no A or AAAA record for {host}")
        }
        Err(error) => error.to_string(),
    };
    debug(
        trace,
        &format!("No address from {server} ({reason}); trying the system resolver"),
    );
    match lookup(&format!("{host}:{port}")).await {
        Ok(endpoint) => Ok(endpoint.address),
        Err(local) => Err(Failure::new(
            exit::NOHOST,
            format!(
                "cannot resolve {host}: {reason}; the system resolver: {}",
                local.message
            ),
        )),
    }
}

pub(super) fn password(agent: Option<&Agent>, user: &str) -> Result<String, Failure> {
    if let Ok(password) = std::env::var("FLOW_PASSWORD") {
        return Ok(password);
    }
    if let Some(password) = agent.and_then(|a| a.password.clone()) {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {user}: ")).map_err(|error| {
            Failure::new(exit::CONFIG, format!("cannot read the password: {error}"))
        });
    }
    Err(Failure::new(
        exit::CONFIG,
        format!("no password for {user}: set FLOW_PASSWORD or `password` in the agents file"),
    ))
}

/// Connects and authenticates; `subject` (a flow or namespace name) picks
/// the agent when `--agent` is not given.
pub async fn open(
    global: &Global,
    file: &FlowFile,
    subject: Option<&str>,
) -> Result<Session, Failure> {
    let chosen = file
        .choose(global.agent.as_deref(), subject)
        .map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    let (agent, namespace) = match chosen {
        Some((agent, namespace)) => (Some(agent.clone()), namespace.map(str::to_owned)),
        None => (None, None),
    };
    if let Some(agent) = &agent {
        debug(global.debug, &format!("Agent selected: {}", agent.name));
    }
    let endpoint = resolve(global, agent.as_ref(), namespace.as_deref(), subject).await?;
    let tls =
        global
            .tls
            .or(agent.as_ref().and_then(|a| a.tls))
            .unwrap_or(if endpoint.dns_says_tls {
                TlsMode::Implicit
            } else {
                TlsMode::None
            });
    let timeout = Duration::from_secs(global.timeout.max(1));
    let trace: Option<Trace> = global
        .debug
        .then(|| Box::new(|line: &str| eprintln!("{line}")) as Trace);
    let tls_config = match tls {
        TlsMode::None => None,
        TlsMode::Starttls | TlsMode::Implicit => {
            let ca = global.ca.clone().or(agent.as_ref().and_then(|a| a.ca.clone())).ok_or_else(|| {
                Failure::new(exit::CONFIG, "TLS needs the CA certificate of the FNAA: give --ca or `ca` in the agents file")
            })?;
            let pem = std::fs::read(&ca).map_err(|e| {
                Failure::new(exit::CONFIG, format!("cannot read {}: {e}", ca.display()))
            })?;
            Some(fnaa_control::client::tls_config_from_pem(&pem)?)
        }
    };
    let mut client = match (tls, tls_config) {
        (TlsMode::Implicit, Some(config)) => {
            Client::connect_tls(
                endpoint.address,
                &endpoint.server_name,
                config,
                timeout,
                trace,
            )
            .await?
        }
        (TlsMode::Starttls, Some(config)) => {
            let mut client = Client::connect(endpoint.address, timeout, trace).await?;
            client.starttls(&endpoint.server_name, config).await?;
            client
        }
        _ => Client::connect(endpoint.address, timeout, trace).await?,
    };
    debug(global.debug, "Connected to FNAA");
    let mechanism = global
        .mechanism
        .or(agent.as_ref().and_then(|a| a.mechanism))
        .unwrap_or(if tls == TlsMode::None {
            MechanismChoice::ScramSha256
        } else {
            MechanismChoice::Plain
        });
    if mechanism == MechanismChoice::Anonymous {
        client.authenticate_anonymous("").await?;
        return Ok(Session { client, agent });
    }
    let user = global
        .user
        .clone()
        .or(agent.as_ref().and_then(|a| a.username.clone()))
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                "no user name: give --user or `username` in the agents file",
            )
        })?;
    let password = password(agent.as_ref(), &user)?;
    match mechanism {
        MechanismChoice::Plain => {
            debug(global.debug, "Authenticating with PLAIN mechanism");
            client.authenticate_plain(&user, &password).await?;
        }
        _ => {
            debug(global.debug, "Authenticating with SCRAM-SHA-256 mechanism");
            client.authenticate_scram(&user, &password).await?;
        }
    }
    debug(global.debug, "Authenticated");
    Ok(Session { client, agent })
}

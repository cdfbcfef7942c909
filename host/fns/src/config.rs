//! The `[dns]` section of `fnaa.toml`.
//!
//! ```toml
//! [dns]
//! nameserver = "127.0.0.1:5300"   # the thesis's --nameserver; default: /etc/resolv.conf
//! ttl = 300
//!
//! [dns.registry]                  # where this host publishes its flows
//! type = "embedded"               # or "rfc2136"
//! listen = "0.0.0.0:53"
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::records::DEFAULT_TTL;
use crate::resolve::{FnsResolver, NameserverAddr, ResolveError, ResolverOptions};
use crate::store::embedded::{EmbeddedConfig, EmbeddedRegistry};
use crate::store::rfc2136::{Rfc2136Config, Rfc2136Registry};
use crate::store::{FlowRegistry, RegistryError};

/// The Flow Name Service: how flows are resolved and where this host
/// publishes its own.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FnsConfig {
    /// DNS server asked to resolve flow URIs and namespaces: `ip` or
    /// `ip:port` (port 53 by default), as the thesis's `--nameserver`.
    /// Default: the system's resolvers (`/etc/resolv.conf`).
    pub nameserver: Option<NameserverAddr>,
    /// Time to wait for one DNS answer, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts per DNS query.
    pub attempts: usize,
    /// DNS answers cached (each at most for its TTL); 0 turns the cache off.
    pub cache_size: u64,
    /// TTL of the records this host publishes, in seconds. Resolvers may
    /// keep a withdrawn flow that long.
    pub ttl: u32,
    /// Addresses of this host's FNAP name (`[fnap] hostname`, the target of
    /// the SRV records it publishes), published as its A and AAAA records
    /// when that name lies in a zone this host publishes into (embedded
    /// server or RFC 2136), so that a client resolves the SRV target through
    /// the same DNS server. Empty (the default): the IP address of `[fnap]
    /// listen` (or `tls_listen`) when it is not a wildcard such as
    /// `0.0.0.0`; set it when the host listens on a wildcard address.
    pub host_addresses: Vec<IpAddr>,
    /// Where this host publishes its flows and namespaces (`[dns.registry]`).
    pub registry: RegistryConfig,
}

impl Default for FnsConfig {
    fn default() -> Self {
        let resolver = ResolverOptions::default();
        FnsConfig {
            nameserver: None,
            timeout_ms: u64::try_from(resolver.timeout.as_millis()).unwrap_or(u64::MAX),
            attempts: resolver.attempts,
            cache_size: resolver.cache_size,
            ttl: DEFAULT_TTL,
            host_addresses: Vec::new(),
            registry: RegistryConfig::default(),
        }
    }
}

/// The publishing backend, chosen by `type`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RegistryConfig {
    /// `type = "embedded"`: this host is the authoritative DNS server of its
    /// namespaces (the default).
    Embedded(EmbeddedConfig),
    /// `type = "rfc2136"`: dynamic updates signed with TSIG to an external
    /// primary such as BIND9.
    Rfc2136(Rfc2136Config),
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig::Embedded(EmbeddedConfig::default())
    }
}

impl FnsConfig {
    /// The resolver options of this configuration.
    pub fn resolver_options(&self) -> ResolverOptions {
        ResolverOptions {
            nameserver: self.nameserver,
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            attempts: self.attempts.max(1),
            cache_size: self.cache_size,
        }
    }

    /// A resolver configured by this section.
    pub fn resolver(&self) -> Result<FnsResolver, ResolveError> {
        FnsResolver::new(self.resolver_options())
    }

    /// The registry configured by this section; the embedded server starts
    /// listening here.
    pub async fn registry(&self) -> Result<Arc<dyn FlowRegistry>, RegistryError> {
        Ok(match &self.registry {
            RegistryConfig::Embedded(config) => Arc::new(EmbeddedRegistry::start(config).await?),
            RegistryConfig::Rfc2136(config) => Arc::new(Rfc2136Registry::new(config)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FnsConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn empty_section_is_the_embedded_default() {
        let config = parse("").expect("config");
        assert!(config.nameserver.is_none());
        assert!(config.host_addresses.is_empty());
        assert_eq!(config.ttl, DEFAULT_TTL);
        assert!(matches!(config.registry, RegistryConfig::Embedded(_)));
    }

    #[test]
    fn rfc2136_section() {
        let config = parse(
            r#"
            nameserver = "172.17.0.2"
            timeout_ms = 1500
            host_addresses = ["192.0.2.10", "2001:db8::10"]
            [registry]
            type = "rfc2136"
            server = "127.0.0.1:5353"
            zones = ["people.syndeno.com"]
            [registry.tsig]
            key_file = "/etc/fnaa/fnaa-update.key"
            "#,
        )
        .expect("config");
        assert_eq!(
            config.nameserver.map(|n| n.to_string()).as_deref(),
            Some("172.17.0.2:53")
        );
        assert_eq!(
            config.resolver_options().timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(config.host_addresses.len(), 2);
        let RegistryConfig::Rfc2136(rfc2136) = config.registry else {
            panic!("not rfc2136");
        };
        assert_eq!(rfc2136.server.0.port(), 5353);
        assert_eq!(rfc2136.zones, ["people.syndeno.com"]);
        assert!(rfc2136.tsig.is_some_and(|tsig| tsig.key_file.is_some()));
    }

    #[test]
    fn embedded_section() {
        let config = parse(
            r#"
            [registry]
            type = "embedded"
            listen = "0.0.0.0:53"
            zones = ["people.syndeno.com"]
            nameserver = "fnaa.syndeno.com"
            "#,
        )
        .expect("config");
        let RegistryConfig::Embedded(embedded) = config.registry else {
            panic!("not embedded");
        };
        assert_eq!(embedded.listen.port(), 53);
        assert!(embedded.create_zones);
    }

    #[test]
    fn unknown_fields_and_types_are_named() {
        let error = parse("[registry]\ntype = \"embedded\"\nlisten_on = \"x\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("listen_on"), "{error}");
        let error = parse("[registry]\ntype = \"sqlite\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("sqlite"), "{error}");
        let error = parse("[registry]\ntype = \"rfc2136\"\nserver = \"x\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("nameserver address"), "{error}");
        assert!(parse("resolver = 1").is_err());
    }
}

//! How the resolver reaches DNS: the nameserver and its limits.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// Default DNS port, used when a nameserver is given without one.
pub const DNS_PORT: u16 = 53;

/// A DNS server address: `ip`, `ip:port` or `[ipv6]:port` (port 53 by
/// default), as the thesis's `--nameserver` option takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(transparent)]
pub struct NameserverAddr(pub SocketAddr);

impl FromStr for NameserverAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(NameserverAddr(address));
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Ok(NameserverAddr(SocketAddr::new(ip, DNS_PORT))),
            Err(_) => Err(format!(
                "`{text}` is not a nameserver address; write an IP address with an optional port, such as 172.17.0.2 or 127.0.0.1:5300"
            )),
        }
    }
}

impl fmt::Display for NameserverAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for NameserverAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the resolver reaches DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverOptions {
    /// The server to ask; `None` uses the system's (`/etc/resolv.conf`).
    pub nameserver: Option<NameserverAddr>,
    /// Time to wait for one answer.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Answers kept in the cache (each for at most its TTL); 0 disables it.
    pub cache_size: u64,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            nameserver: None,
            timeout: Duration::from_secs(3),
            attempts: 2,
            cache_size: 1024,
        }
    }
}

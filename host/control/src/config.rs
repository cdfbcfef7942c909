//! The `[fnap]`, `[grpc]` and `[store]` sections of `fnaa.toml`. The `///`
//! comments on the fields are the user documentation of each setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::names::DnsName;

/// The control plane's configuration: the three sections together.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// The FNAP server (users and peer FNAAs).
    #[serde(default)]
    pub fnap: FnapConfig,
    /// The gRPC admin API (operators and orchestrators).
    #[serde(default)]
    pub grpc: GrpcConfig,
    /// Where the host keeps its state.
    #[serde(default)]
    pub store: StoreConfig,
}

/// `[fnap]`: the FNAP server.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FnapConfig {
    /// Address of the cleartext listener (STARTTLS is offered on it when
    /// `tls` is set). FNAP has no well-known port: publish the port in the
    /// DNS SRV record of the agent. Remove the line and set `tls_listen`
    /// only to accept TLS connections exclusively. Default:
    /// `127.0.0.1:61000`; an address off loopback needs `tls` (or
    /// `allow_cleartext_off_loopback`).
    pub listen: Option<SocketAddr>,
    /// Whether `listen` may be off loopback without `tls`, so that
    /// passwords and events cross the network unencrypted (a lab, or a
    /// network encrypted below FNAP). Off: the host refuses to start.
    pub allow_cleartext_off_loopback: bool,
    /// Address of the implicit-TLS listener: the TLS handshake starts as
    /// soon as the TCP connection is open. Requires `tls`.
    pub tls_listen: Option<SocketAddr>,
    /// The host name announced in the greeting (`220 <hostname> FNAA`);
    /// use the FQDN that the SRV record of the agent points at.
    pub hostname: String,
    /// Certificate and private key for implicit TLS and STARTTLS.
    pub tls: Option<TlsFiles>,
    /// Whether PLAIN may be used on a connection that is not encrypted.
    /// Unset means: allowed only when no `tls` is configured (the thesis
    /// set-up), refused with `538` as soon as TLS is available.
    pub allow_plaintext_auth: Option<bool>,
    /// Whether `AUTHENTICATE ANONYMOUS` is accepted (off unless set).
    /// Anonymous sessions may only read flows that their owner marked
    /// public (thesis 4.1) and subscribe to them; each session has an
    /// identity of its own, so it controls only the subscriptions it made.
    pub allow_anonymous: bool,
    /// Most subscriptions that anonymous sessions from one client address
    /// may hold at once; one more gets `453` until one ends.
    pub anonymous_subscriptions_per_address: usize,
    /// Most anonymous subscriptions one flow may have at once; one more
    /// gets `453`.
    pub anonymous_subscriptions_per_flow: usize,
    /// How other organisations' FNAAs may take the events of their
    /// subscriptions to this host's flows (DESCRIBE FLOW of a copy lists
    /// them as `modes=`): `direct`, reading the copy flow on this host's
    /// broker, which must then be reachable from them; `relay`, this host
    /// sending the events over the FNAP session (RELAY), so the broker
    /// need not be exposed. Leaving out `direct` tells subscribers'
    /// FNAAs to take relay; keep the broker itself unreachable from
    /// outside, since a copy's DESCRIBE still names it.
    pub subscription_modes: Vec<crate::store::TransferMode>,
    /// Domains under which users may create namespaces themselves with
    /// `CREATE NAMESPACE` (e.g. `["unix.ar"]` lets a user create
    /// `flows.unix.ar`). Empty: only the operator assigns namespaces.
    pub namespace_domains: Vec<DnsName>,
    /// The most simultaneous connections; further ones get `421` and are
    /// closed.
    pub max_connections: usize,
    /// The longest command line in octets, CRLF excluded. Longer lines are
    /// discarded and answered with `500`.
    pub max_line_length: usize,
    /// Seconds a client may stay silent before the server says `421` and
    /// closes the connection.
    pub idle_timeout_secs: u64,
    /// Seconds the server waits for one command to complete before it
    /// answers `451`; the operation itself still runs to its end (or is
    /// undone), so the state stays consistent.
    pub command_timeout_secs: u64,
    /// Failed logins from one IP address within `login_throttle_window_secs`
    /// after which further logins from that address get `454` until the
    /// window has passed.
    pub login_failures_before_throttle: u32,
    /// The window, in seconds, over which failed logins are counted.
    pub login_throttle_window_secs: u64,
    /// Milliseconds the server waits before answering a failed login.
    pub login_failure_delay_ms: u64,
    /// Failed logins after which one connection is closed.
    pub login_failures_per_connection: u32,
    /// Seconds given to open sessions to finish on shutdown before they are
    /// cut.
    pub shutdown_grace_secs: u64,
}

impl Default for FnapConfig {
    fn default() -> Self {
        FnapConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 61000))),
            allow_cleartext_off_loopback: false,
            tls_listen: None,
            hostname: "localhost".to_owned(),
            tls: None,
            allow_plaintext_auth: None,
            allow_anonymous: false,
            anonymous_subscriptions_per_address: 4,
            anonymous_subscriptions_per_flow: 64,
            subscription_modes: crate::store::TransferMode::ALL.to_vec(),
            namespace_domains: Vec::new(),
            max_connections: 4096,
            max_line_length: 4096,
            idle_timeout_secs: 300,
            command_timeout_secs: 30,
            login_failures_before_throttle: 10,
            login_throttle_window_secs: 300,
            login_failure_delay_ms: 1000,
            login_failures_per_connection: 3,
            shutdown_grace_secs: 10,
        }
    }
}

impl FnapConfig {
    /// Why `listen` may not be used as configured: off loopback in clear
    /// text without `allow_cleartext_off_loopback`.
    pub fn cleartext_refusal(&self) -> Option<String> {
        cleartext_refusal(
            "fnap",
            self.listen,
            self.tls.is_some(),
            self.allow_cleartext_off_loopback,
            "passwords and events",
        )
    }

    /// Whether PLAIN is accepted on a cleartext connection.
    pub fn plaintext_auth_allowed(&self) -> bool {
        self.allow_plaintext_auth.unwrap_or(self.tls.is_none())
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs.max(1))
    }
}

/// PEM files of a TLS identity.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first, PEM.
    pub certificate: PathBuf,
    /// The private key of the leaf certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// `[grpc]`: the gRPC admin API (`host/control/proto/fnaa_control.proto`).
///
/// The API is served over TLS when `[grpc.tls]` is set, in clear text
/// otherwise: without TLS, keep it on loopback or a private network, since
/// operator tokens and user passwords cross it in every request. Failed
/// logins count against the same per-address limit as FNAP's
/// (`[fnap] login_failures_before_throttle`, `login_throttle_window_secs`,
/// `login_failure_delay_ms`): a failure on either protocol counts for both.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address of the gRPC listener; unset disables the API. It speaks TLS
    /// only when `tls` is set, and clear text only otherwise. Default:
    /// `127.0.0.1:50051`; an address off loopback needs `tls` (or
    /// `allow_cleartext_off_loopback`).
    pub listen: Option<SocketAddr>,
    /// Whether `listen` may be off loopback without `tls` (tokens and
    /// passwords then cross the network unencrypted). Off: the host
    /// refuses to start.
    pub allow_cleartext_off_loopback: bool,
    /// File holding the operator token. A request carrying
    /// `authorization: Bearer <token>` acts as the operator (every
    /// namespace, user management); `authorization: Basic <base64
    /// user:password>` acts as that user with the same rights as in FNAP.
    /// Unset: only user credentials are accepted. A wrong token or password
    /// gets `UNAUTHENTICATED` after `[fnap] login_failure_delay_ms`; once an
    /// address has failed `[fnap] login_failures_before_throttle` times
    /// within the window (over FNAP and gRPC together), its requests get
    /// `RESOURCE_EXHAUSTED` until the window has passed, even with the
    /// right credentials.
    pub admin_token_file: Option<PathBuf>,
    /// The Unix socket of the same API for commands on this machine
    /// (`fnaa user`, `fnaa flows`, `fnaa processors`, `fnaa
    /// subscriptions` while the host runs). Whoever opens it acts as the
    /// operator, so it is created with mode 0600 and accepts only
    /// processes of the host's own user (or root). Default: `fnaa.sock`
    /// next to `[store] path`; `""` disables it.
    pub socket: Option<PathBuf>,
    /// Certificate and private key of the listener (`[grpc.tls]`, the same
    /// two fields as `[fnap.tls]`, and may name the same files). Set: the
    /// listener accepts only TLS (with ALPN `h2`), clients connect to
    /// `https://`. Unset: clear text, `http://`.
    pub tls: Option<TlsFiles>,
}

impl GrpcConfig {
    /// Why `listen` may not be used as configured: off loopback in clear
    /// text without `allow_cleartext_off_loopback`.
    pub fn cleartext_refusal(&self) -> Option<String> {
        cleartext_refusal(
            "grpc",
            self.listen,
            self.tls.is_some(),
            self.allow_cleartext_off_loopback,
            "tokens and passwords",
        )
    }

    /// The admin socket `socket` names, unless it is unset or `""`.
    fn named_socket(&self) -> Option<PathBuf> {
        self.socket
            .clone()
            .filter(|path| !path.as_os_str().is_empty())
    }
}

/// The refusal of a cleartext listener of `[section]` off loopback, which
/// would carry `what` unencrypted, unless TLS is set or it is `allowed`.
fn cleartext_refusal(
    section: &str,
    listen: Option<SocketAddr>,
    tls: bool,
    allowed: bool,
    what: &str,
) -> Option<String> {
    let address = listen?;
    (!tls && !allowed && !address.ip().is_loopback()).then(|| {
        format!(
            "[{section}] listen = \"{address}\" without [{section}.tls] would carry {what} unencrypted over the network: set [{section}.tls], listen on 127.0.0.1, or set [{section}] allow_cleartext_off_loopback = true"
        )
    })
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 50051))),
            allow_cleartext_off_loopback: false,
            admin_token_file: None,
            socket: None,
            tls: None,
        }
    }
}

impl ControlConfig {
    /// Where the admin API's Unix socket is, unless disabled: `[grpc]
    /// socket`, else `fnaa.sock` in the directory of the store file.
    pub fn admin_socket(&self) -> Option<PathBuf> {
        match &self.grpc.socket {
            Some(_) => self.grpc.named_socket(),
            None => Some(
                self.store
                    .path
                    .parent()
                    .map_or_else(PathBuf::new, PathBuf::from)
                    .join("fnaa.sock"),
            ),
        }
    }

    /// The admin socket only where `[grpc] socket` names one (for a store
    /// that is not `[store] path`'s).
    pub fn named_admin_socket(&self) -> Option<PathBuf> {
        self.grpc.named_socket()
    }
}

/// `[store]`: the embedded database.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The redb database file (accounts, namespaces, flows, subscriptions,
    /// processors). Created when missing. Only one process may open it.
    pub path: PathBuf,
    /// PBKDF2 iterations for the SCRAM-SHA-256 keys derived when a
    /// password is set (RFC 7677 asks for at least 4096).
    pub scram_iterations: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("fnaa-state.redb"),
            scram_iterations: 4096,
        }
    }
}

//! One MQTT connection (3.1.1 or 5), driven by the task that owns it.
//!
//! rumqttc's packet codecs decode what the broker sends; the connection
//! itself is ours, for throughput: rumqttc's event loop writes and flushes
//! every outgoing packet separately (one system call, and one TCP segment,
//! per PUBLISH and per PUBACK), and hands every packet through a channel
//! and back as an event. Here the owner encodes packets straight into a
//! write buffer ([`Connection::publish`], [`Connection::ack`]), and
//! [`Connection::poll`] writes the whole buffer at once before it reads:
//! a batch of 2,000 publishes or acknowledgements goes out in a few large
//! writes. [`Connection::poll`] is cancel-safe, so the owner can `select!`
//! on it.
//!
//! The parts:
//! * `packet`: framing (fixed header, remaining length, size limits) and
//!   the packets small enough to write by hand;
//! * `codec`: packets from the broker decoded into one version-free enum,
//!   PUBLISH and SUBSCRIBE encoded;
//! * `inflight`: packet ids and the in-flight window;
//! * `dial`: TCP, TLS, CONNECT and CONNACK;
//! * `connection`: the I/O loop and keep-alive.

mod codec;
mod connection;
mod dial;
mod error;
mod inflight;
mod packet;

use std::time::Duration;

pub(crate) use error::{ConnectionError, InvalidPublish};

pub(crate) use connection::Connection;

use super::{MqttBrokerConfig, MqttVersion, Qos};
use crate::transport::TransportError;

/// How to connect.
pub(crate) struct Options {
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean: bool,
    /// MQTT 5 session expiry for persistent sessions, in seconds.
    pub session_expiry_s: u32,
    /// Incoming QoS 1/2 messages are acknowledged by the owner
    /// ([`Connection::ack`]) rather than on receipt.
    pub manual_acks: bool,
    /// Outgoing QoS 1/2 publishes in flight at most (the broker's MQTT 5
    /// receive maximum lowers it).
    pub inflight: u16,
}

/// A message that arrived.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub pkid: u16,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

/// What the connection reports.
#[derive(Debug)]
pub(crate) enum Ev {
    /// Connected; whether the broker still had our session.
    Connected {
        session_present: bool,
    },
    Publish(Incoming),
    /// The write buffer was written out; it held `qos0` QoS 0 publishes
    /// (written is all we will ever know of those).
    Flushed {
        qos0: usize,
    },
    /// PUBACK (QoS 1): `error` when the broker refused (MQTT 5 reason code).
    Acked {
        pkid: u16,
        error: Option<String>,
    },
    /// PUBREC (QoS 2, first half): `error` when the broker refused.
    Received {
        pkid: u16,
        error: Option<String>,
    },
    /// PUBCOMP (QoS 2, done).
    Completed {
        pkid: u16,
    },
    /// SUBACK: filters the broker refused.
    Subscribed {
        refused: usize,
    },
}

/// Why a publish could not be handed to the connection.
#[derive(Debug)]
pub(crate) enum PublishError {
    /// Not connected, the in-flight window is full, or too much is waiting
    /// to be written; try again after polling.
    Full,
    /// The message cannot be sent on this protocol.
    Invalid(InvalidPublish),
}

/// The longest keep-alive CONNECT can carry; longer ones are cut to it
/// (as before), which also keeps the timer's deadline from overflowing.
const MAX_KEEP_ALIVE: Duration = Duration::from_secs(u16::MAX as u64);

/// Creates a connection; nothing connects until it is polled.
pub(crate) fn create(
    broker: &MqttBrokerConfig,
    options: &Options,
) -> Result<Connection, TransportError> {
    let params = dial::Params {
        version: broker.version,
        target: dial::Target::Tcp {
            host: broker.host().to_owned(),
            port: broker.port(),
            tls: broker.tls_config()?,
        },
        username: broker.username.clone(),
        password: broker.password.as_ref().map(|p| p.expose().to_owned()),
        keep_alive: broker.keep_alive().min(MAX_KEEP_ALIVE),
        client_id: options.client_id.clone(),
        clean: options.clean,
        session_expiry_s: options.session_expiry_s,
    };
    Ok(Connection::new(
        params,
        options.manual_acks,
        options.inflight,
    ))
}

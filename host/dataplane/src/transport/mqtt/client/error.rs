//! Why a connection went down, and why a message can never be published.
//! The texts are what an operator reads in the outage alarm.

use std::time::Duration;

use super::packet::FrameError;

/// Why the connection to the broker is down; polling again reconnects.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invalid TLS server name `{host}`: {reason}")]
    TlsServerName { host: String, reason: String },
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("the broker closed the connection before CONNACK")]
    ClosedBeforeConnAck,
    #[error("no CONNACK within {0:?}")]
    NoConnAck(Duration),
    #[error("expected CONNACK, received {0}")]
    NotConnAck(&'static str),
    /// The CONNACK's return or reason code, by name.
    #[error("the broker refused the connection: {0}")]
    Refused(String),
    #[error("the connection closed while writing")]
    ClosedWhileWriting,
    #[error("the broker closed the connection")]
    Closed,
    #[error("the broker did not answer a PINGREQ")]
    NoPingResp,
    /// The reason code of the broker's DISCONNECT, when it gave one.
    #[error("the broker disconnected us{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Disconnected(Option<String>),
    #[error("malformed packet from the broker: {0}")]
    Frame(FrameError),
    #[error("malformed {packet} from the broker: {reason}")]
    Malformed {
        packet: &'static str,
        reason: String,
    },
    /// rumqttc refused to encode one of our packets.
    #[error("cannot encode {packet}: {reason}")]
    Encode {
        packet: &'static str,
        reason: String,
    },
    #[cfg(test)]
    #[error("connection refused (no test stream left)")]
    NoTestStream,
}

/// Why a message can never be sent on this connection (retrying the same
/// message cannot help: it is a dead letter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidPublish {
    #[error("`{0}` is not a valid MQTT topic name")]
    TopicName(String),
    #[error("the topic name is too long")]
    TopicTooLong,
    #[error(
        "MQTT 3.1.1 cannot carry headers (CloudEvents binary mode); use structured mode or MQTT 5"
    )]
    HeadersOnV311,
    #[error("the content type is too long for MQTT 5")]
    ContentTypeTooLong,
    #[error("header `{0}` is not UTF-8; MQTT 5 user properties are text")]
    HeaderNotUtf8(String),
    #[error("header `{0}` is too long for an MQTT 5 user property")]
    HeaderTooLong(String),
    #[error("the message ({size} bytes) exceeds the broker's maximum packet size ({max} bytes)")]
    TooLarge { size: usize, max: u32 },
}

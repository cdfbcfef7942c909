//! What a relay needs of the host (docs/fnap.md 5.16): on the publisher's
//! side, the events of a copy flow read from its broker in chunks, each
//! acknowledged there once the subscriber's FNAA confirmed it; on the
//! subscriber's side, how to reach the publisher's FNAA for a pipeline
//! that reads a copy by relay.

use futures::future::BoxFuture;

use super::ProvisionError;
use crate::store::Capability;

/// One chunk of a copy flow's events.
pub struct CopyChunk {
    /// Each event in the CloudEvents JSON format, on one line.
    pub events: Vec<String>,
    /// Acknowledges the chunk's events at the broker. Lazy: it does
    /// nothing until awaited, which must happen in the order the chunks
    /// came, and only once the subscriber confirmed them.
    pub ack: BoxFuture<'static, Result<(), ProvisionError>>,
}

/// A reader of a copy flow for one relay session. Dropping it stops
/// reading; what was not acknowledged is read again by the next one.
pub struct CopyFeed {
    /// Chunks as they are read; bounded, so a slow subscriber holds the
    /// reader back instead of filling memory. Closed when reading failed
    /// for good.
    pub chunks: tokio::sync::mpsc::Receiver<CopyChunk>,
    /// Resolves once the reader consumes (events published from then on
    /// are kept for this subscriber even while no session is open).
    pub ready: BoxFuture<'static, ()>,
    /// Ends the reader when dropped.
    pub guard: Box<dyn Send + Sync>,
}

/// The publisher's FNAA, as a pipeline reading a copy by relay reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPeer {
    /// Its name (the SRV target), which its TLS certificate must match.
    pub fnaa: String,
    /// `host:port` it was reached at.
    pub address: String,
    /// Whether the session uses TLS.
    pub tls: bool,
    /// What this host logs in with there.
    pub capability: Capability,
}

//! Relay mode on both sides (docs/fnap.md 5.16). On the subscriber's FNAA,
//! [`RelayBroker`] is the "broker" of a pipeline that reads another
//! organisation's copy flow by relay: its source holds a FNAP session with
//! the publisher's FNAA and turns the chunks it sends into messages, each
//! chunk acknowledged there once this host's broker confirmed all of it.
//! On the publisher's FNAA, [`copy_reader`] reads a copy flow on the
//! host's own broker for a relay session.

pub mod copy_reader;
mod source;

use std::sync::Arc;

use fnaa_control::provision::RelayPeer;
use fnaa_dataplane::transport::{
    Broker, BrokerFuture, EndpointContext, EndpointSettings, NoQueues, QueueAdmin, Sink, Source,
    TransportError,
};

use super::peers::FnapPeers;

/// The name relay transport errors carry.
const BROKER: &str = "relay";

/// Another organisation's copy flow, read through its FNAA.
pub struct RelayBroker {
    peer: RelayPeer,
    copy: String,
    peers: Arc<FnapPeers>,
}

impl std::fmt::Debug for RelayBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBroker")
            .field("fnaa", &self.peer.fnaa)
            .field("copy", &self.copy)
            .finish_non_exhaustive()
    }
}

impl RelayBroker {
    /// Copy flow `copy`, relayed by `peer`, reached as `peers` says.
    pub fn new(peer: RelayPeer, copy: String, peers: Arc<FnapPeers>) -> RelayBroker {
        RelayBroker { peer, copy, peers }
    }
}

impl Broker for RelayBroker {
    fn kind(&self) -> &'static str {
        BROKER
    }

    fn describe(&self) -> String {
        format!(
            "relay of {} by {} at {}",
            self.copy, self.peer.fnaa, self.peer.address
        )
    }

    fn servers(&self) -> Vec<String> {
        vec![self.peer.address.clone()]
    }

    fn tls(&self) -> bool {
        self.peer.tls
    }

    /// The source hands over Kafka binary-mode messages.
    fn default_connector(&self) -> &'static str {
        "kafka"
    }

    fn source<'a>(
        &'a self,
        context: &'a EndpointContext,
        _settings: &'a EndpointSettings,
    ) -> BrokerFuture<'a, Box<dyn Source>> {
        Box::pin(async move {
            let source = source::open(
                self.peer.clone(),
                self.copy.clone(),
                self.peers.clone(),
                context.clone(),
                self.describe(),
            );
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn sink(
        &self,
        _context: &EndpointContext,
        _settings: &EndpointSettings,
    ) -> Result<Box<dyn Sink>, TransportError> {
        Err(TransportError::Config {
            broker: BROKER,
            reason: "a relayed copy flow is read, never written".into(),
        })
    }

    /// Nothing to make here: the copy's queue and the relay's position are
    /// at the publisher.
    fn admin(&self) -> Result<Arc<dyn QueueAdmin>, TransportError> {
        Ok(Arc::new(NoQueues))
    }

    fn flow_source(&self, _pipeline: &str, _queues: &[&str]) -> EndpointSettings {
        EndpointSettings::default()
    }

    fn flow_sink(&self, _queue: &str) -> EndpointSettings {
        EndpointSettings::default()
    }
}

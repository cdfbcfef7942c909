//! The end of an outage, noticed by probing the cluster (shared with the
//! sink).

use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};

use crate::outage::OutageMonitor;
use crate::transport::kafka::Context;

/// While `monitor` reports an outage, probe the cluster every second and end
/// the outage as soon as it answers (a quiet topic would otherwise keep the
/// alarm on until the next message).
pub(crate) fn spawn_health_check<C>(client: Weak<C>, monitor: Arc<OutageMonitor>)
where
    C: HasMetadata + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(c) = client.upgrade() else { return };
            if !monitor.is_down() {
                continue;
            }
            let ok = tokio::task::spawn_blocking(move || c.probe())
                .await
                .unwrap_or(false);
            if ok {
                monitor.recovered();
            }
        }
    });
}

/// A client that can fetch cluster metadata.
pub(crate) trait HasMetadata {
    /// True when some broker answered a metadata request.
    fn probe(&self) -> bool;
}

impl HasMetadata for StreamConsumer<Context> {
    fn probe(&self) -> bool {
        self.fetch_metadata(None, Duration::from_secs(2))
            .is_ok_and(|m| !m.brokers().is_empty())
    }
}

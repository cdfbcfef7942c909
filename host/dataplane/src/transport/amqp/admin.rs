//! Exchanges of flows and durable queues of pipelines: made and removed on
//! a connection of their own per call (provisioning is rare).

use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

use super::{AmqpBrokerConfig, ExchangeType, client_error, ensure_exchange, is_not_found, short};
use crate::transport::{BrokerFuture, QueueAdmin, QueueLayout, TransportError};

/// How long provisioning waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes and removes the topic exchanges of flows.
#[derive(Debug)]
pub struct AmqpAdmin {
    broker: AmqpBrokerConfig,
}

impl AmqpAdmin {
    pub fn new(broker: &AmqpBrokerConfig) -> Self {
        AmqpAdmin {
            broker: broker.clone(),
        }
    }

    async fn connect(&self) -> Result<lapin::Connection, TransportError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.broker.connect("fnaa-provisioning"))
            .await
            .map_err(|_| client_error("timed out connecting"))?
            .map_err(client_error)
    }

    /// Runs one call about `name` on a fresh connection, treating
    /// `NOT_FOUND` as success.
    async fn call<F, Fut>(&self, name: &str, call: F) -> Result<(), TransportError>
    where
        F: FnOnce(lapin::Channel, lapin::types::ShortString) -> Fut,
        Fut: std::future::Future<Output = Result<(), lapin::Error>>,
    {
        let name = short("name", name)?;
        let connection = self.connect().await?;
        let channel = connection.create_channel().await.map_err(client_error)?;
        let result = call(channel, name).await;
        let _ = connection.close(200, "done".into()).await;
        match result {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(client_error(e)),
        }
    }
}

impl QueueAdmin for AmqpAdmin {
    /// A durable topic exchange named after the flow.
    fn create<'a>(&'a self, name: &'a str, _layout: QueueLayout) -> BrokerFuture<'a, ()> {
        Box::pin(async move {
            let connection = self.connect().await?;
            let created = ensure_exchange(&connection, name, ExchangeType::Topic, true).await;
            let _ = connection.close(200, "done".into()).await;
            match created.map_err(client_error)? {
                true => Ok(()),
                false => Err(TransportError::Config {
                    broker: "amqp",
                    reason: format!("exchange `{name}` cannot be declared"),
                }),
            }
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(self.call(name, |channel, name| async move {
            channel
                .exchange_delete(name, ExchangeDeleteOptions::default())
                .await
        }))
    }

    /// The durable queue a stopped pipeline's source consumed.
    fn delete_consumer<'a>(&'a self, consumer: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(self.call(consumer, |channel, name| async move {
            channel
                .queue_delete(name, QueueDeleteOptions::default())
                .await
                .map(|_| ())
        }))
    }
}

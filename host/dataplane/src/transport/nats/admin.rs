//! The JetStream streams of FNAP flows and the durable consumers of
//! pipelines, made and removed through the JetStream API.

use async_nats::jetstream::{self, Context, ErrorCode, stream};
use tokio::sync::OnceCell;

use super::{NatsBrokerConfig, client_error, stream_name};
use crate::backoff::RetryConfig;
use crate::transport::{BrokerFuture, QueueAdmin, QueueLayout, TransportError};

/// Makes and removes the streams of flows (`create("a.b")` makes stream
/// `a_b` capturing subject `a.b`, file storage) and durable consumers. It
/// connects on first use and keeps the connection.
pub struct NatsAdmin {
    broker: NatsBrokerConfig,
    context: OnceCell<Context>,
}

impl NatsAdmin {
    pub fn new(broker: &NatsBrokerConfig) -> Self {
        NatsAdmin {
            broker: broker.clone(),
            context: OnceCell::new(),
        }
    }

    async fn context(&self) -> Result<&Context, TransportError> {
        self.context
            .get_or_try_init(|| async {
                let client = self
                    .broker
                    .connect("fnaa-admin", &RetryConfig::default(), None)
                    .await?;
                Ok(jetstream::new(client))
            })
            .await
    }

    /// Creates the stream of flow `flow`; succeeds when it exists.
    pub async fn create_stream(&self, flow: &str, replicas: usize) -> Result<(), TransportError> {
        let context = self.context().await?;
        let config = stream::Config {
            name: stream_name(flow),
            subjects: vec![flow.to_owned()],
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            ..stream::Config::default()
        };
        context
            .get_or_create_stream(config)
            .await
            .map_err(|e| client_error(format!("cannot create stream of flow `{flow}`: {e}")))?;
        Ok(())
    }

    /// Deletes the stream of flow `flow`; succeeds when there is none.
    pub async fn delete_stream(&self, flow: &str) -> Result<(), TransportError> {
        let context = self.context().await?;
        let name = stream_name(flow);
        match context.delete_stream(&name).await {
            Ok(_) => Ok(()),
            Err(e) => match e.kind() {
                jetstream::context::DeleteStreamErrorKind::JetStream(js)
                    if js.code() == 404 || js.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(())
                }
                _ => Err(client_error(format!(
                    "cannot delete stream `{name}` of flow `{flow}`: {e}"
                ))),
            },
        }
    }

    /// Deletes durable consumer `consumer` from every stream; succeeds when
    /// there is none.
    pub async fn delete_durable(&self, consumer: &str) -> Result<(), TransportError> {
        use futures::StreamExt as _;
        let context = self.context().await?;
        let mut names = context.stream_names();
        let mut streams = Vec::new();
        while let Some(name) = names.next().await {
            streams.push(name.map_err(client_error)?);
        }
        for name in streams {
            match context.delete_consumer_from_stream(consumer, &name).await {
                Ok(_) => tracing::debug!(stream = %name, consumer, "deleted durable consumer"),
                Err(e) => match e.kind() {
                    jetstream::stream::ConsumerErrorKind::JetStream(js)
                        if js.code() == 404 || js.error_code() == ErrorCode::CONSUMER_NOT_FOUND => {
                    }
                    _ => {
                        return Err(client_error(format!(
                            "cannot delete consumer `{consumer}` of stream `{name}`: {e}"
                        )));
                    }
                },
            }
        }
        Ok(())
    }

    /// Whether the stream of flow `flow` exists.
    pub async fn stream_exists(&self, flow: &str) -> Result<bool, TransportError> {
        let context = self.context().await?;
        match context.get_stream(stream_name(flow)).await {
            Ok(_) => Ok(true),
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(js)
                    if js.code() == 404 || js.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(false)
                }
                _ => Err(client_error(e)),
            },
        }
    }
}

impl QueueAdmin for NatsAdmin {
    fn create<'a>(&'a self, name: &'a str, layout: QueueLayout) -> BrokerFuture<'a, ()> {
        let replicas = usize::try_from(layout.replication).unwrap_or(1);
        Box::pin(self.create_stream(name, replicas))
    }

    fn delete<'a>(&'a self, name: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(self.delete_stream(name))
    }

    fn delete_consumer<'a>(&'a self, consumer: &'a str) -> BrokerFuture<'a, ()> {
        Box::pin(async move {
            let durable = super::safe_name(consumer);
            self.delete_durable(&durable).await
        })
    }
}

//! The trait a broker connector implements, and the broker message types.

use crate::{Config, Event, InitError, PluginInfo};

/// Where a message goes to or came from (the WIT `destination`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Destination {
    /// Kafka topic, MQTT topic, or AMQP exchange.
    pub name: String,
    /// AMQP routing key; `None` for brokers without one.
    pub routing_key: Option<String>,
}

/// A message header: Kafka header, MQTT 5 user property, AMQP header table
/// entry (the WIT `header`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value as bytes.
    pub value: Vec<u8>,
}

/// A broker message (the WIT `message`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Where it goes or came from.
    pub destination: Destination,
    /// Kafka message key; ignored by brokers without keys.
    pub key: Option<Vec<u8>>,
    /// MQTT 5 content type, AMQP `content_type`, Kafka `content-type` header.
    pub content_type: Option<String>,
    /// Headers in order.
    pub headers: Vec<Header>,
    /// The body.
    pub payload: Vec<u8>,
}

/// A broker connector (the WIT `broker-connector` interface): pure
/// conversions between events and broker messages. Implement it and invoke
/// [`export_connector!`](crate::export_connector) once in the crate.
///
/// A connector may log and read the clock, but must not use
/// [`crate::state`]: the `connector` world does not import it, and a
/// component that calls it cannot be instantiated as a connector.
pub trait Connector: Sized + 'static {
    /// Describes the plugin. Must not depend on configuration.
    fn info() -> PluginInfo;

    /// Configures a fresh instance (binding mode, routing templates, ...).
    fn init(config: Config) -> Result<Self, InitError>;

    /// Encodes each event into one message, or says why it cannot. Returns
    /// exactly one entry per input event, in order.
    fn encode(&mut self, batch: Vec<Event>) -> Vec<Result<Message, String>>;

    /// Decodes each message into one event, or says why it cannot. Returns
    /// exactly one entry per input message, in order.
    fn decode(&mut self, batch: Vec<Message>) -> Vec<Result<Event, String>>;
}

/// Exports a [`Connector`] implementation as the component's
/// `fnaa:plugin/broker-connector` interface. Invoke it exactly once per
/// crate.
///
/// ```ignore
/// fnaa_sdk::export_connector!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        const _: () = {
            #[doc(hidden)]
            struct __FnaaConnectorExport;

            impl $crate::__private::ConnectorExport for __FnaaConnectorExport {
                type Connector = $connector;

                fn with_instance<R>(
                    f: impl FnOnce(&mut ::core::option::Option<$connector>) -> R,
                ) -> R {
                    ::std::thread_local! {
                        static INSTANCE: ::core::cell::RefCell<::core::option::Option<$connector>> =
                            const { ::core::cell::RefCell::new(::core::option::Option::None) };
                    }
                    INSTANCE.with_borrow_mut(f)
                }
            }

            // The component's entry points. Only on wasm32: a native build
            // (unit tests) has no component model, and the export names,
            // such as `fnaa:plugin/...#init`, do not link into a native
            // shared library.
            #[cfg(target_arch = "wasm32")]
            const _: () = {
                type __FnaaConnectorGuest =
                    $crate::__private::ConnectorGuest<__FnaaConnectorExport>;
                $crate::__private::bindings::connector::__export_connector_world!(
                    __FnaaConnectorGuest with_types_in $crate::__private::bindings::connector
                );
            };

            #[cfg(not(target_arch = "wasm32"))]
            const _: fn() -> [*const (); 4] =
                $crate::__private::connector_glue::<__FnaaConnectorExport>;
        };
    };
}

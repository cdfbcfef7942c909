//! The glue between the generated `Guest` traits and the SDK's
//! [`Processor`] and [`Connector`] traits. Used by the export macros only.

use std::marker::PhantomData;

use crate::bindings::connector::exports::fnaa::plugin::broker_connector as wit_connector;
use crate::bindings::processor::exports::fnaa::plugin::flow_processor as wit_processor;
use crate::bindings::processor::fnaa::plugin::types as wit;
use crate::{Config, Connector, Event, Message, Outputs, ProcessError, Processor};

/// Gives the generated glue access to the one instance of a processor. The
/// export macro implements it in the plugin crate, where the instance's
/// `thread_local` lives (a generic `static` would be shared by every type).
pub trait ProcessorExport: 'static {
    /// The plugin's processor type.
    type Processor: Processor;
    /// Runs `f` with the instance slot (`None` before `init`).
    fn with_instance<R>(f: impl FnOnce(&mut Option<Self::Processor>) -> R) -> R;
}

/// Implements the generated `flow-processor` `Guest` trait for the
/// processor `E::Processor`.
pub struct ProcessorGuest<E>(PhantomData<E>);

impl<E: ProcessorExport> wit_processor::Guest for ProcessorGuest<E> {
    fn info() -> wit::PluginInfo {
        E::Processor::info().into()
    }

    fn init(config: wit::Config) -> Result<(), wit::InitError> {
        // Drop any earlier instance first, so a failed init leaves none.
        E::with_instance(|slot| *slot = None);
        let instance = E::Processor::init(Config::new(config))?;
        E::with_instance(|slot| *slot = Some(instance));
        Ok(())
    }

    fn process(
        port: String,
        batch: Vec<wit::Event>,
    ) -> Result<Vec<wit_processor::Emitted>, wit_processor::ProcessError> {
        // Same layout on both sides, so `collect` reuses the allocation.
        let batch: Vec<Event> = batch.into_iter().map(Event::from).collect();
        let mut outputs = Outputs::with_capacity(batch.len());
        E::with_instance(|slot| match slot {
            Some(processor) => processor.process(&port, batch, &mut outputs),
            None => Err(ProcessError::failed(
                "process called before a successful init",
            )),
        })?;
        Ok(outputs
            .into_vec()
            .into_iter()
            .map(wit_processor::Emitted::from)
            .collect())
    }
}

/// Names the entry points of a processor's glue without exporting them.
/// Native builds (unit tests) call this instead of exporting, so that the
/// glue is still type-checked and the processor counts as used.
pub fn processor_glue<E: ProcessorExport>() -> [*const (); 3] {
    use wit_processor::Guest;
    [
        <ProcessorGuest<E> as Guest>::info as *const (),
        <ProcessorGuest<E> as Guest>::init as *const (),
        <ProcessorGuest<E> as Guest>::process as *const (),
    ]
}

/// Gives the generated glue access to the one instance of a connector.
pub trait ConnectorExport: 'static {
    /// The plugin's connector type.
    type Connector: Connector;
    /// Runs `f` with the instance slot (`None` before `init`).
    fn with_instance<R>(f: impl FnOnce(&mut Option<Self::Connector>) -> R) -> R;
}

/// Implements the generated `broker-connector` `Guest` trait for the
/// connector `E::Connector`.
pub struct ConnectorGuest<E>(PhantomData<E>);

const NOT_INITIALISED: &str = "connector called before a successful init";

impl<E: ConnectorExport> wit_connector::Guest for ConnectorGuest<E> {
    fn info() -> wit::PluginInfo {
        E::Connector::info().into()
    }

    fn init(config: wit::Config) -> Result<(), wit::InitError> {
        E::with_instance(|slot| *slot = None);
        let instance = E::Connector::init(Config::new(config))?;
        E::with_instance(|slot| *slot = Some(instance));
        Ok(())
    }

    fn encode(batch: Vec<wit::Event>) -> Vec<Result<wit_connector::Message, String>> {
        let count = batch.len();
        let batch: Vec<Event> = batch.into_iter().map(Event::from).collect();
        let results = E::with_instance(|slot| match slot {
            Some(connector) => connector.encode(batch),
            None => vec![Err(NOT_INITIALISED.to_owned()); count],
        });
        results.into_iter().map(|r| r.map(Into::into)).collect()
    }

    fn decode(batch: Vec<wit_connector::Message>) -> Vec<Result<wit::Event, String>> {
        let count = batch.len();
        let batch: Vec<Message> = batch.into_iter().map(Message::from).collect();
        let results = E::with_instance(|slot| match slot {
            Some(connector) => connector.decode(batch),
            None => vec![Err(NOT_INITIALISED.to_owned()); count],
        });
        results.into_iter().map(|r| r.map(Into::into)).collect()
    }
}

/// Names the entry points of a connector's glue without exporting them; see
/// [`processor_glue`].
pub fn connector_glue<E: ConnectorExport>() -> [*const (); 4] {
    use wit_connector::Guest;
    [
        <ConnectorGuest<E> as Guest>::info as *const (),
        <ConnectorGuest<E> as Guest>::init as *const (),
        <ConnectorGuest<E> as Guest>::encode as *const (),
        <ConnectorGuest<E> as Guest>::decode as *const (),
    ]
}

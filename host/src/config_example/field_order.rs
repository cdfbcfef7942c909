//! The order in which each configuration struct declares its fields, so that
//! the example lists them as the code (and its docs) does. A JSON Schema
//! keeps properties in a map sorted by name; serde's derived `Deserialize`
//! still knows the declaration order, and hands it to the deserializer with
//! the struct's name, which is also the struct's name in the schema.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeOwned, Deserializer, Visitor};

/// Field names in declaration order, by struct name.
pub(super) type FieldOrders = HashMap<&'static str, &'static [&'static str]>;

/// The declaration order of every struct of the configuration. A struct
/// missing here is listed alphabetically, and fails the test
/// `every_struct_has_its_declaration_order`.
pub(super) fn field_orders() -> FieldOrders {
    use fnaa_control::config as control;
    use fnaa_dataplane::{backoff, config as dataplane, embedded_mqtt, pipeline};

    [
        declared_fields::<crate::config::Config>(),
        declared_fields::<fnaa_runtime::RuntimeConfig>(),
        declared_fields::<fnaa_runtime::Grants>(),
        declared_fields::<fnaa_runtime::DirGrant>(),
        declared_fields::<fnaa_fns::FnsConfig>(),
        declared_fields::<fnaa_fns::EmbeddedConfig>(),
        declared_fields::<fnaa_fns::ZoneFileConfig>(),
        declared_fields::<fnaa_fns::store::rfc2136::Rfc2136Config>(),
        declared_fields::<fnaa_fns::store::rfc2136::TsigConfig>(),
        declared_fields::<control::FnapConfig>(),
        declared_fields::<control::TlsFiles>(),
        declared_fields::<control::GrpcConfig>(),
        declared_fields::<control::StoreConfig>(),
        declared_fields::<dataplane::BrokersConfig>(),
        declared_fields::<embedded_mqtt::EmbeddedMqttConfig>(),
        declared_fields::<embedded_mqtt::EmbeddedTls>(),
        declared_fields::<crate::backends::dataplane::FlowsConfig>(),
        declared_fields::<crate::backends::peers::PeersConfig>(),
        declared_fields::<crate::ingest::IngestConfig>(),
        declared_fields::<dataplane::PipelineConfig>(),
        declared_fields::<dataplane::ProcessorConfig>(),
        declared_fields::<dataplane::SourceFields>(),
        declared_fields::<dataplane::SinkFields>(),
        declared_fields::<backoff::RetryConfig>(),
        declared_fields::<pipeline::ProcessorRetryConfig>(),
    ]
    .into_iter()
    .chain(broker_structs())
    .flatten()
    .collect()
}

/// The brokers' structs, from the transport's own list.
fn broker_structs() -> Vec<Option<(&'static str, &'static [&'static str])>> {
    struct Collect(Vec<Option<(&'static str, &'static [&'static str])>>);
    impl fnaa_dataplane::transport::ConfigStructs for Collect {
        fn add<T: DeserializeOwned>(&mut self) {
            self.0.push(declared_fields::<T>());
        }
    }
    let mut collect = Collect(Vec::new());
    fnaa_dataplane::transport::config_structs(&mut collect);
    collect.0
}

/// The name and fields of struct `T`, as its derived `Deserialize` asks for
/// them; `None` for a type that is not a struct with named fields.
fn declared_fields<T: DeserializeOwned>() -> Option<(&'static str, &'static [&'static str])> {
    let mut probe = FieldsProbe::default();
    // The probe always fails the deserialization, once it has what it wants.
    let _ = T::deserialize(&mut probe);
    probe.found
}

/// A deserializer that only notes what `deserialize_struct` is asked for.
#[derive(Default)]
struct FieldsProbe {
    found: Option<(&'static str, &'static [&'static str])>,
}

/// How the probe ends every deserialization.
#[derive(Debug)]
struct Probed;

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("only the struct's fields were looked at")
    }
}

impl std::error::Error for Probed {}

impl serde::de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed
    }
}

impl<'de> Deserializer<'de> for &mut FieldsProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        self.found = Some((name, fields));
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

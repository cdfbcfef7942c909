//! A loaded plugin: its compiled, pre-instantiated component and what it
//! says about itself.

use std::sync::Arc;

use wasmtime::component::{Component, types::ComponentItem};

use crate::bindings::{connector, processor};
use crate::error::RuntimeError;
use crate::host::HostState;
use crate::runtime::Runtime;
use crate::sandbox::guarded_call;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Processor,
    Connector,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Processor => "processor",
            PluginKind::Connector => "connector",
        }
    }
}

/// What a plugin tells about itself (`info()` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub stateless: bool,
}

/// One interface a plugin imports, and how the host provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedInterface {
    /// e.g. `fnaa:plugin/log@0.1.0` or `wasi:filesystem/preopens@0.2.6`.
    pub name: String,
    /// True for interfaces whose resources are denied unless the operator
    /// grants them (filesystem, sockets, environment).
    pub needs_grant: bool,
}

/// Export names that identify the two worlds.
const PROCESSOR_EXPORT: &str = "fnaa:plugin/flow-processor@";
const CONNECTOR_EXPORT: &str = "fnaa:plugin/broker-connector@";

pub(crate) enum Pre {
    Processor(processor::ProcessorPre<HostState>),
    Connector(connector::ConnectorPre<HostState>),
}

pub(crate) struct PluginInner {
    pub digest: String,
    pub kind: PluginKind,
    pub info: PluginInfo,
    pub imports: Vec<ImportedInterface>,
    pub exports: Vec<String>,
    pub pre: Pre,
}

/// A compiled, checked, pre-instantiated plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    name: Arc<str>,
    pub(crate) inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("kind", &self.inner.kind)
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn prepare(
        runtime: &Runtime,
        name: &str,
        digest: String,
        component: Component,
    ) -> Result<Plugin, RuntimeError> {
        let engine = &runtime.inner.engine;
        let wrong_world = |reason: String| RuntimeError::WrongWorld {
            plugin: name.to_owned(),
            reason,
        };
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        let imports: Vec<ImportedInterface> = ty
            .imports(engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
            .map(|(n, _)| ImportedInterface {
                name: n.to_owned(),
                needs_grant: needs_grant(n),
            })
            .collect();
        let kind = if exports.iter().any(|e| e.starts_with(PROCESSOR_EXPORT)) {
            PluginKind::Processor
        } else if exports.iter().any(|e| e.starts_with(CONNECTOR_EXPORT)) {
            PluginKind::Connector
        } else {
            return Err(wrong_world(format!(
                "it exports neither fnaa:plugin/flow-processor nor fnaa:plugin/broker-connector (exports: {})",
                if exports.is_empty() {
                    "none".to_owned()
                } else {
                    exports.join(", ")
                }
            )));
        };
        let mut store = runtime.new_store(name, "(info)", "")?;
        let (pre, info) = match kind {
            PluginKind::Processor => {
                let pre = runtime
                    .inner
                    .processor_linker
                    .instantiate_pre(&component)
                    .and_then(processor::ProcessorPre::new)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                let bindings = pre
                    .instantiate(&mut store)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                let info = guarded_call(runtime, &mut store, |s| {
                    bindings.fnaa_plugin_flow_processor().call_info(s)
                })
                .map_err(|cause| wrong_world(format!("info() failed: {cause}")))?;
                (Pre::Processor(pre), info)
            }
            PluginKind::Connector => {
                let pre = runtime
                    .inner
                    .connector_linker
                    .instantiate_pre(&component)
                    .and_then(connector::ConnectorPre::new)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                let bindings = pre
                    .instantiate(&mut store)
                    .map_err(|e| wrong_world(format!("{e:#}")))?;
                let info = guarded_call(runtime, &mut store, |s| {
                    bindings.fnaa_plugin_broker_connector().call_info(s)
                })
                .map_err(|cause| wrong_world(format!("info() failed: {cause}")))?;
                (Pre::Connector(pre), info)
            }
        };
        let info = PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            stateless: info.stateless,
        };
        Ok(Plugin {
            name: name.into(),
            inner: Arc::new(PluginInner {
                digest,
                kind,
                info,
                imports,
                exports,
                pre,
            }),
        })
    }

    /// The same compiled plugin under another name.
    pub(crate) fn renamed(&self, name: &str) -> Plugin {
        Plugin {
            name: name.into(),
            inner: self.inner.clone(),
        }
    }

    /// The name the host knows it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component, hex.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub fn kind(&self) -> PluginKind {
        self.inner.kind
    }

    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The interfaces the component imports.
    pub fn imports(&self) -> &[ImportedInterface] {
        &self.inner.imports
    }

    /// The names the component exports.
    pub fn exports(&self) -> &[String] {
        &self.inner.exports
    }
}

fn needs_grant(interface: &str) -> bool {
    ["wasi:filesystem/", "wasi:sockets/", "wasi:cli/environment"]
        .iter()
        .any(|p| interface.starts_with(p))
}

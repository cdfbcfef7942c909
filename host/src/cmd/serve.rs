//! `fnaa serve`: runs the host until interrupted.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::backends::dataplane::{
    BrokerQueues, DataPlanePipelines, PluginCatalog, SharedDataPlane,
};
use crate::backends::dns::DnsDirectory;
use crate::config::Config;

/// Runs the host with the configuration at `path`, or the embedded defaults.
pub fn run(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    tokio.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Starts every part of the host, then waits for SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    raise_open_files_limit();
    let runtime = fnaa_runtime::Runtime::new(config.runtime.clone())
        .context("cannot start the plugin runtime")?;
    let pool = fnaa_runtime::InstancePool::new(&runtime);
    let idle = std::time::Duration::from_secs(config.runtime.idle_eviction_secs.max(1));
    let sweeper = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(idle / 2);
            loop {
                tick.tick().await;
                let evicted = pool.evict_idle(idle);
                if evicted > 0 {
                    tracing::debug!(evicted, "evicted idle plugin instances");
                }
            }
        })
    };
    // The data plane first: the control plane restarts the pipelines of
    // subscriptions and processors in it.
    let dataplane = std::sync::Arc::new(tokio::sync::Mutex::new(
        start_data_plane(&config, &runtime).await?,
    ));
    let control_shutdown = fnaa_control::CancellationToken::new();
    let control =
        start_control_plane(&config, &runtime, &dataplane, control_shutdown.clone()).await?;
    // Devices reach the embedded broker only once the pipelines reading it,
    // static and restored, have subscribed: it must not acknowledge what
    // nobody would receive.
    let opener = dataplane
        .lock()
        .await
        .opener(std::time::Duration::from_secs(10));
    opener
        .await
        .context("cannot open the embedded MQTT broker")?;
    // Accepted events wait in the outbox on disk, so the listener needs no
    // pipeline to be running yet.
    let ingest = match &config.ingest {
        Some(ingest) => Some(crate::ingest::start(ingest, &config.brokers).await?),
        None => None,
    };
    tracing::info!(plugins = fnaa_plugins::ALL.len(), "fnaa host started");

    shutdown_signal().await;
    tracing::info!("shutting down");
    drop(ingest);
    control_shutdown.cancel();
    if let Err(error) = control.await {
        tracing::error!(%error, "control plane task failed");
    }
    dataplane
        .lock()
        .await
        .stop_pipelines(std::time::Duration::from_secs(10))
        .await;
    sweeper.abort();
    Ok(())
}

/// The brokers, DNS and pipelines behind FNAP: flows get their queue on
/// the `[flows]` broker and their DNS records from the configured Flow Name
/// Service registry; subscriptions and processors run in the data plane.
async fn control_backends(
    config: &Config,
    runtime: &fnaa_runtime::Runtime,
    dataplane: &SharedDataPlane,
) -> anyhow::Result<(
    fnaa_control::service::Backends,
    std::sync::Arc<DnsDirectory>,
    std::sync::Arc<DataPlanePipelines>,
)> {
    let queues = BrokerQueues::new(dataplane, &config.flows).await?;
    tracing::info!(broker = %config.flows.broker, kind = queues.kind(), "flows live on this broker");
    let catalog = plugin_catalog(runtime.clone(), config.flows.plugin_dir.clone());
    let resolver = config
        .dns
        .resolver()
        .context("cannot set up the DNS resolver of [dns]")?;
    let peers = std::sync::Arc::new(crate::backends::peers::FnapPeers::new(
        resolver,
        &config.peers,
    )?);
    let pipelines = std::sync::Arc::new(DataPlanePipelines::new(
        dataplane.clone(),
        &queues,
        &config.flows,
        catalog,
        peers.clone(),
    ));
    let registry = config
        .dns
        .registry()
        .await
        .context("cannot start the Flow Name Service registry")?;
    let fnap = &config.fnap;
    let (port, tls) = match (fnap.listen, fnap.tls_listen) {
        (_, Some(tls)) => (tls.port(), true),
        (Some(plain), None) => (plain.port(), false),
        (None, None) => (0, false),
    };
    let directory = std::sync::Arc::new(
        DnsDirectory::new(registry, &fnap.hostname, port, tls)
            .with_ttl(config.dns.ttl)
            .with_addresses(host_addresses(config)),
    );
    let backends = fnaa_control::service::Backends {
        provisioner: std::sync::Arc::new(queues),
        directory: directory.clone(),
        pipelines: pipelines.clone(),
        peers,
    };
    Ok((backends, directory, pipelines))
}

/// The addresses published for `[fnap] hostname`: `[dns] host_addresses`,
/// else the IP of the FNAP listener when it is not a wildcard.
fn host_addresses(config: &Config) -> Vec<std::net::IpAddr> {
    if !config.dns.host_addresses.is_empty() {
        return config.dns.host_addresses.clone();
    }
    let fnap = &config.fnap;
    let listener = fnap.tls_listen.or(fnap.listen).map(|address| address.ip());
    match listener {
        Some(ip) if !ip.is_unspecified() => vec![ip],
        _ => Vec::new(),
    }
}

/// Publishes the A/AAAA records of the FNAP host name where it lies in a
/// zone this host publishes into, so the SRV targets of its flows resolve
/// through its DNS server.
async fn publish_host(directory: &DnsDirectory, hostname: &str) {
    match directory.publish_host().await {
        Ok(Some(zone)) => {
            tracing::info!(host = hostname, %zone, "published the FNAA host's addresses")
        }
        Ok(None) => tracing::debug!(
            host = hostname,
            "FNAA host addresses not published here: no address known ([dns] host_addresses) or no zone of this host holds the name"
        ),
        Err(error) => {
            tracing::warn!(host = hostname, %error, "cannot publish the FNAA host's addresses")
        }
    }
}

/// Publishes the DNS records of every active flow again: the embedded DNS
/// server keeps its zones in memory, so a restarted host must refill them
/// (with BIND9 this rewrites the same records).
async fn republish_flows(service: &fnaa_control::service::Service, directory: &DnsDirectory) {
    use fnaa_control::provision::FlowDirectory as _;
    let operator = fnaa_control::service::Principal::Operator;
    let flows = match service.list_flows(&operator, None).await {
        Ok(flows) => flows,
        Err(error) => {
            tracing::error!(%error, "cannot list flows to republish their DNS records");
            return;
        }
    };
    for flow in flows {
        let Some(binding) = &flow.binding else {
            continue;
        };
        if let Err(error) = directory.publish(&flow.name, binding).await {
            tracing::error!(flow = %flow.name, %error, "cannot republish the DNS records of a flow");
        }
    }
}

/// Opens the state store, restores flows, subscriptions and processors, and
/// starts the FNAP and gRPC servers of `[fnap]`, `[grpc]`, `[store]`. They
/// run until `shutdown` is cancelled; the returned task ends when they have
/// shut down gracefully.
async fn start_control_plane(
    config: &Config,
    runtime: &fnaa_runtime::Runtime,
    dataplane: &SharedDataPlane,
    shutdown: fnaa_control::CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (backends, directory, pipelines) = control_backends(config, runtime, dataplane).await?;
    let plane = fnaa_control::ControlPlane::start(&config.control(), backends)
        .await
        .context("cannot start the FNAP and gRPC servers")?;
    publish_host(&directory, &config.fnap.hostname).await;
    republish_flows(plane.service(), &directory).await;
    first_start(config, &plane).await?;
    pipelines.wait_until_consuming(true);
    tracing::info!(fnap = ?plane.fnap_addr(), fnap_tls = ?plane.fnap_tls_addr(), grpc = ?plane.grpc_addr(), admin_socket = ?plane.admin_socket(), "control plane listening");
    tokio::spawn(check_remote_subscriptions(
        plane.service().clone(),
        std::time::Duration::from_millis(config.peers.check_interval_ms.max(100)),
        shutdown.clone(),
    ));
    Ok(tokio::spawn(plane.run(shutdown)))
}

/// On a store without accounts, creates the administrator and says how
/// to log in.
async fn first_start(config: &Config, plane: &fnaa_control::ControlPlane) -> anyhow::Result<()> {
    let Some(made) =
        crate::first_start::bootstrap(plane.service(), &config.fnap.hostname, &config.store.path)
            .await?
    else {
        return Ok(());
    };
    let server = plane
        .fnap_addr()
        .or(plane.fnap_tls_addr())
        .map_or_else(|| "<host>:<port>".to_owned(), |a| a.to_string());
    let password = match &made.password_file {
        Some(file) => format!(
            "its password is in {} (readable only by you)",
            std::fs::canonicalize(file)
                .unwrap_or_else(|_| file.clone())
                .display()
        ),
        None => "its password is FNAA_ADMIN_PASSWORD".to_owned(),
    };
    tracing::info!(
        "first start: created the account `{}`, owner of the namespace {}; {password}. Log in with `flow login --server {server} --user {}`",
        crate::first_start::ADMIN,
        made.namespace,
        crate::first_start::ADMIN
    );
    Ok(())
}

/// Asks, every `interval`, the publishers of this host's subscriptions to
/// other organisations' flows whether they still serve them.
async fn check_remote_subscriptions(
    service: std::sync::Arc<fnaa_control::service::Service>,
    interval: std::time::Duration,
    shutdown: fnaa_control::CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = service.check_remote_subscriptions().await {
            tracing::warn!(%error, "cannot check the subscriptions to other organisations' flows");
        }
    }
}

/// Starts the data plane of `[brokers]` and `[[pipelines]]`: the embedded
/// MQTT broker when no broker is configured, and every static pipeline, its
/// plugins (built-in names or `.wasm` paths) run by `runtime`.
async fn start_data_plane(
    config: &Config,
    runtime: &fnaa_runtime::Runtime,
) -> anyhow::Result<fnaa_dataplane::DataPlane> {
    let resolver = runtime.clone();
    let plugins = fnaa_dataplane::pipeline::wasm::WasmPlugins::new(runtime.clone(), move |name| {
        crate::cmd::plugin::load_plugin(&resolver, name).map_err(|e| format!("{e:#}").into())
    });
    let plane = fnaa_dataplane::DataPlane::start_closed(
        &config.brokers,
        &config.pipelines,
        std::sync::Arc::new(plugins),
        fnaa_dataplane::process_environment(),
    )
    .await
    .context("cannot start the data plane")?;
    tracing::info!(pipelines = plane.pipelines().len(), "data plane started");
    Ok(plane)
}

/// Finds the plugin of a processor created over FNAP: `<dir>/name@version.wasm`,
/// `<dir>/name.wasm` or a built-in plugin, whose reported version must be
/// the one asked for. Names never reach outside `dir`.
fn plugin_catalog(
    runtime: fnaa_runtime::Runtime,
    dir: Option<std::path::PathBuf>,
) -> std::sync::Arc<PluginCatalog> {
    std::sync::Arc::new(move |plugin: &fnaa_control::store::PluginRef| {
        let name = plugin.name.as_str();
        let unsafe_name = name.is_empty()
            || name.starts_with('/')
            || name
                .split('/')
                .any(|part| part.is_empty() || part.starts_with('.'));
        if unsafe_name {
            return Err(format!("`{name}` is not a plugin name"));
        }
        // Loading (compiling) a plugin only to read its version is done
        // only when a version is asked for: the data plane loads it anyway.
        let check_version = |load: &dyn Fn() -> Result<fnaa_runtime::Plugin, String>| {
            let Some(version) = &plugin.version else {
                return Ok(());
            };
            let loaded = load()?;
            match &loaded.info().version {
                found if found == version => Ok(()),
                found => Err(format!("plugin `{name}` is version {found}, not {version}")),
            }
        };
        let failed = |e: fnaa_runtime::RuntimeError| format!("plugin `{name}`: {e}");
        if let Some(dir) = &dir {
            let versioned = plugin
                .version
                .as_ref()
                .map(|v| dir.join(format!("{name}@{v}.wasm")));
            for path in versioned
                .into_iter()
                .chain([dir.join(format!("{name}.wasm"))])
            {
                if path.is_file() {
                    check_version(&|| runtime.load_file(&path).map_err(failed))?;
                    return Ok(path.display().to_string());
                }
            }
        }
        match fnaa_plugins::find(name) {
            Some(builtin) => {
                check_version(&|| runtime.load(builtin.name, builtin.wasm).map_err(failed))?;
                Ok(builtin.name.to_owned())
            }
            None => Err(format!(
                "no plugin `{name}`: built-in ones are {}{}",
                fnaa_plugins::ALL
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                if dir.is_some() {
                    ", others are installed in [flows] plugin_dir"
                } else {
                    "; set [flows] plugin_dir to install others"
                }
            )),
        }
    })
}

/// Raises the soft limit of open files to the hard one: every broker
/// connection and plugin cache file is a descriptor, and the soft default
/// (often 1,024) would refuse connections long before the machine must.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // No finite hard limit: Linux refuses an infinite soft one, keep it.
    let Some(hard) = limit.maximum else { return };
    if limit.current == Some(hard) {
        return;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = ?limit.current, to = hard, "raised the open-files limit to its hard limit")
        }
        Err(error) => {
            tracing::warn!(%error, soft = ?limit.current, hard, "cannot raise the open-files limit")
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!("cannot listen for SIGTERM: {error}");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

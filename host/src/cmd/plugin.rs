//! `fnaa plugin check|run|list`: for plugin authors and operators.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use fnaa_runtime::{Plugin, PluginKind, ProcessorInstance, Runtime, RuntimeConfig};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validates a component against the processor or connector world and
    /// lists what it imports.
    Check {
        /// The component (`.wasm`), or the name of a built-in plugin.
        plugin: String,
    },
    /// Runs a processor offline: CloudEvents JSON lines in, emitted events
    /// (with their output ports) out, errors on stderr.
    Run {
        /// The component (`.wasm`), or the name of a built-in plugin.
        plugin: String,
        /// Configuration entry `key=value`; repeat for more.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
        config: Vec<(String, String)>,
        /// File of CloudEvents in JSON, one per line; `-` reads stdin.
        #[arg(long, short, value_name = "FILE")]
        input: PathBuf,
        /// Input port the events arrive on.
        #[arg(long, default_value = "in")]
        port: String,
        /// Events per batch.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
        batch: u16,
    },
    /// Lists the plugins built into this binary.
    List,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Runs a plugin command.
pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Check { plugin } => check(&plugin),
        PluginCommand::Run {
            plugin,
            config,
            input,
            port,
            batch,
        } => run_offline(&plugin, &config, &input, &port, batch.into()),
        PluginCommand::List => {
            let runtime = offline_runtime()?;
            for builtin in fnaa_plugins::ALL {
                let plugin = runtime.load(builtin.name, builtin.wasm)?;
                let info = plugin.info();
                println!(
                    "{:<12} {:<10} {:<8} {}",
                    builtin.name,
                    plugin.kind().as_str(),
                    info.version,
                    info.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A runtime for one-off commands: default limits, no disk cache.
fn offline_runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })?)
}

/// Loads `plugin` from a file, or from the built-in plugins by name.
pub fn load_plugin(runtime: &Runtime, plugin: &str) -> anyhow::Result<Plugin> {
    let path = Path::new(plugin);
    if path.exists() {
        return Ok(runtime.load_file(path)?);
    }
    match fnaa_plugins::find(plugin) {
        Some(builtin) => Ok(runtime.load(builtin.name, builtin.wasm)?),
        None => bail!(
            "no file `{plugin}` and no built-in plugin of that name (built-in: {})",
            fnaa_plugins::ALL
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn check(plugin: &str) -> anyhow::Result<ExitCode> {
    let runtime = offline_runtime()?;
    let loaded = load_plugin(&runtime, plugin)?;
    let info = loaded.info();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{plugin}: ok")?;
    writeln!(
        out,
        "  world:       fnaa:plugin/{}@0.1.0",
        loaded.kind().as_str()
    )?;
    writeln!(out, "  name:        {} {}", info.name, info.version)?;
    writeln!(out, "  description: {}", info.description)?;
    if loaded.kind() == PluginKind::Processor {
        writeln!(
            out,
            "  stateless:   {}",
            if info.stateless {
                "yes (instances may be shared)"
            } else {
                "no"
            }
        )?;
    }
    writeln!(out, "  sha256:      {}", loaded.digest())?;
    writeln!(out, "  imports:")?;
    for import in loaded.imports() {
        let note = if import.name.starts_with("fnaa:plugin/") {
            "host"
        } else if import.needs_grant {
            "sandboxed: denied unless granted"
        } else {
            "sandboxed"
        };
        writeln!(out, "    {:<44} {note}", import.name)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_offline(
    plugin: &str,
    config: &[(String, String)],
    input: &Path,
    port: &str,
    batch_size: usize,
) -> anyhow::Result<ExitCode> {
    let runtime = offline_runtime()?;
    let loaded = load_plugin(&runtime, plugin)?;
    if loaded.kind() != PluginKind::Processor {
        bail!(
            "`{plugin}` is a {} plugin; `fnaa plugin run` runs processors",
            loaded.kind().as_str()
        );
    }
    let mut instance = ProcessorInstance::new(&runtime, &loaded, "offline", config)?;
    let reader: Box<dyn std::io::Read> = if input == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(input)
                .with_context(|| format!("cannot open {}", input.display()))?,
        )
    };
    let name = if input == Path::new("-") {
        "stdin".to_owned()
    } else {
        input.display().to_string()
    };
    let mut stdout = std::io::stdout().lock();
    let mut failures = 0usize;
    let mut batch = Vec::with_capacity(batch_size);
    let mut first_line = 1;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("{name}:{number}: cannot read"))?;
        if line.trim().is_empty() {
            continue;
        }
        match fnaa_event::from_json(line.as_bytes()) {
            Ok(event) => {
                if batch.is_empty() {
                    first_line = number;
                }
                batch.push(event);
            }
            Err(error) => {
                eprintln!("{name}:{number}: not a CloudEvent: {error}");
                failures += 1;
            }
        }
        if batch.len() == batch_size {
            failures += run_batch(
                &mut instance,
                port,
                std::mem::take(&mut batch),
                &name,
                first_line,
                number,
                &mut stdout,
            )?;
        }
    }
    if !batch.is_empty() {
        let last = first_line + batch.len() - 1;
        failures += run_batch(
            &mut instance,
            port,
            batch,
            &name,
            first_line,
            last,
            &mut stdout,
        )?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Processes one batch and prints its outputs; returns 1 if it failed.
fn run_batch(
    instance: &mut ProcessorInstance,
    port: &str,
    batch: Vec<fnaa_event::Event>,
    name: &str,
    first_line: usize,
    last_line: usize,
    out: &mut impl std::io::Write,
) -> anyhow::Result<usize> {
    match instance.process(port, batch) {
        Ok(emitted) => {
            for e in emitted {
                let event: serde_json::Value =
                    serde_json::from_slice(&fnaa_event::to_json(&e.event))?;
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "port": e.port, "event": event })
                )?;
            }
            Ok(0)
        }
        Err(error) => {
            eprintln!("{name}:{first_line}-{last_line}: {error}");
            Ok(1)
        }
    }
}

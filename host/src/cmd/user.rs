//! `fnaa user add/list/passwd/remove`: accounts in the host's store. They
//! open the store file of `[store] path`, so they run while the host is
//! stopped (redb allows one process); on a running host use the gRPC admin
//! API (`AddUser`, `SetPassword`, `RemoveUser`, `ListUsers`).

use std::io::BufRead as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use fnaa_control::names::DnsName;
use fnaa_control::service::{Backends, Principal, Service, ServicePolicy};
use fnaa_control::store::RedbStore;

use crate::config::Config;

/// Account management.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds an account. The password comes from `FNAA_PASSWORD`, from
    /// standard input with `--password-stdin`, or from a prompt.
    Add {
        /// Account name: letters, digits, `.`, `_`, `-`, `@`.
        name: String,
        /// A namespace the account owns (e.g. `flows.unix.ar`); repeatable.
        #[arg(long)]
        namespace: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the accounts and the namespaces each owns.
    List,
    /// Sets a new password (same sources as `add`).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Removes an account that owns no namespace.
    Remove { name: String },
}

/// Opens the store of the configuration at `config` (or the default one)
/// as a service that refuses to provision.
pub(crate) fn offline_service(config: Option<&Path>) -> anyhow::Result<Service> {
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let store = RedbStore::open(&config.store.path)
        .with_context(|| format!("cannot open the store {}", config.store.path.display()))?;
    let policy = ServicePolicy {
        namespace_domains: config.fnap.namespace_domains.clone(),
        scram_iterations: config.store.scram_iterations,
        anonymous_subscriptions_per_address: config.fnap.anonymous_subscriptions_per_address,
        anonymous_subscriptions_per_flow: config.fnap.anonymous_subscriptions_per_flow,
    };
    Ok(Service::new(Arc::new(store), Backends::offline(), policy))
}

fn password(name: &str, from_stdin: bool) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("FNAA_PASSWORD") {
        return Ok(password);
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password(format!("Password for {name}: "))
        .context("cannot read the password")?;
    let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// Runs a `fnaa user` command.
pub fn run(config: Option<&Path>, command: UserCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    runtime.block_on(async {
        let service = offline_service(config)?;
        let operator = Principal::Operator;
        match command {
            UserCommand::Add {
                name,
                namespace,
                password_stdin,
            } => {
                let namespaces: Vec<DnsName> = namespace
                    .iter()
                    .map(|ns| {
                        DnsName::parse(ns).with_context(|| format!("invalid namespace `{ns}`"))
                    })
                    .collect::<anyhow::Result<_>>()?;
                let password = password(&name, password_stdin)?;
                service
                    .add_user(&operator, &name, &password)
                    .await
                    .with_context(|| format!("cannot add {name}"))?;
                for namespace in &namespaces {
                    service
                        .create_namespace(&operator, namespace, Some(&name))
                        .await
                        .with_context(|| format!("cannot give {namespace} to {name}"))?;
                }
                println!("added {name}");
            }
            UserCommand::List => {
                for (name, namespaces) in service.list_users(&operator).await? {
                    let namespaces: Vec<&str> = namespaces.iter().map(DnsName::as_str).collect();
                    println!("{name}\t{}", namespaces.join(","));
                }
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let password = password(&name, password_stdin)?;
                service
                    .set_password(&operator, &name, &password)
                    .await
                    .with_context(|| format!("cannot change the password of {name}"))?;
                println!("password of {name} changed");
            }
            UserCommand::Remove { name } => {
                service
                    .remove_user(&operator, &name)
                    .await
                    .with_context(|| format!("cannot remove {name}"))?;
                println!("removed {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

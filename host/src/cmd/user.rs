//! `fnaa user add/list/passwd/remove`: accounts of the host, through the
//! running host's admin socket or, when it is stopped, its store file.

use std::io::BufRead as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use fnaa_control::names::DnsName;

use super::admin::Admin;

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
    super::block_on(async {
        let mut admin = Admin::open(config).await?;
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
                admin
                    .add_user(&name, &password)
                    .await
                    .with_context(|| format!("cannot add {name}"))?;
                for namespace in &namespaces {
                    admin
                        .create_namespace(namespace, &name)
                        .await
                        .with_context(|| format!("cannot give {namespace} to {name}"))?;
                }
                println!("added {name}");
            }
            UserCommand::List => {
                for user in admin.list_users().await? {
                    println!("{}\t{}", user.name, user.namespaces.join(","));
                }
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let password = password(&name, password_stdin)?;
                admin
                    .set_password(&name, &password)
                    .await
                    .with_context(|| format!("cannot change the password of {name}"))?;
                println!("password of {name} changed");
            }
            UserCommand::Remove { name } => {
                admin
                    .remove_user(&name)
                    .await
                    .with_context(|| format!("cannot remove {name}"))?;
                println!("removed {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

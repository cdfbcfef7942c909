//! Runs one `flow` command.

use std::path::PathBuf;

use clap::CommandFactory as _;

use super::agents::FlowFile;
use super::cli::{Cli, Command, Create, Deletable, Listing, Object, ProcessorCommand};
use super::connect;
use super::exit::{self, Failure};

fn agents_path(text: &str) -> (PathBuf, bool) {
    match text.strip_prefix("~/") {
        Some(rest) if text == "~/.flow.yml" || !rest.is_empty() => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            // Only the default may be missing.
            (home.join(rest), text != "~/.flow.yml")
        }
        _ => (PathBuf::from(text), true),
    }
}

/// The flow or namespace a command is about, to pick the agent.
fn subject(command: &Command) -> Option<&str> {
    match command {
        Command::Create(
            Create::Flow { name, .. } | Create::Namespace { name } | Create::Processor { name, .. },
        )
        | Command::Describe(Object::Flow { name } | Object::Processor { name })
        | Command::Delete(
            Deletable::Flow { name }
            | Deletable::Namespace { name }
            | Deletable::Processor { name },
        )
        | Command::Processor(
            ProcessorCommand::Update { name, .. }
            | ProcessorCommand::Pause { name }
            | ProcessorCommand::Resume { name }
            | ProcessorCommand::Status { name },
        ) => Some(name),
        Command::Set { flow, .. } | Command::Tail { flow, .. } => Some(flow),
        Command::List(Listing::Flows { namespace }) => namespace.as_deref(),
        Command::Subscribe {
            local: Some(local), ..
        } => Some(local),
        Command::Subscribe { .. }
        | Command::Describe(Object::Subscription { .. })
        | Command::Unsubscribe { .. }
        | Command::List(_)
        | Command::Login { .. }
        | Command::Completions { .. } => None,
    }
}

fn print_lines(lines: &[String]) {
    for line in lines {
        println!("{line}");
    }
}

/// Runs the parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "flow", &mut std::io::stdout());
        return Ok(());
    }
    let (path, required) = agents_path(&cli.global.config);
    let file =
        FlowFile::load(&path, required).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    if cli.global.debug && path.exists() {
        eprintln!("Using config file: {}", path.display());
    }
    if let Command::Login {
        name,
        password_stdin,
    } = &cli.command
    {
        return super::login::login(&cli.global, &path, file, name, *password_stdin).await;
    }
    let mut session = connect::open(&cli.global, &file, subject(&cli.command)).await?;
    if let Command::Tail {
        flow,
        output,
        count,
    } = &cli.command
    {
        return super::tail::tail(session.client, flow, *output, *count).await;
    }
    let client = &mut session.client;
    match &cli.command {
        Command::Create(Create::Flow { name, public }) => {
            let created = client.create_flow(name, *public).await?;
            println!("flow {created} created");
        }
        Command::Create(Create::Namespace { name }) => {
            client.command(&format!("CREATE NAMESPACE {name}")).await?;
            println!("namespace {name} created");
        }
        Command::Create(Create::Processor {
            name,
            plugin,
            input,
            output,
            settings,
        }) => {
            let mut line = format!(
                "CREATE PROCESSOR {name} PLUGIN {plugin} INPUT {} OUTPUT {}",
                input.join(","),
                output.join(",")
            );
            if let Some(settings) = settings {
                line.push_str(&format!(" CONFIG {settings}"));
            }
            client.command(&line).await?;
            println!("processor {name} created");
        }
        Command::Describe(Object::Flow { name }) => print_lines(
            &client
                .data_command(&format!("DESCRIBE FLOW {name}"))
                .await?,
        ),
        Command::Describe(Object::Subscription { name }) => print_lines(
            &client
                .data_command(&format!("DESCRIBE SUBSCRIPTION {name}"))
                .await?,
        ),
        Command::Describe(Object::Processor { name })
        | Command::Processor(ProcessorCommand::Status { name }) => print_lines(
            &client
                .data_command(&format!("DESCRIBE PROCESSOR {name}"))
                .await?,
        ),
        Command::Delete(what) => {
            let (kind, name) = match what {
                Deletable::Flow { name } => ("FLOW", name),
                Deletable::Namespace { name } => ("NAMESPACE", name),
                Deletable::Processor { name } => ("PROCESSOR", name),
            };
            client.command(&format!("DELETE {kind} {name}")).await?;
            println!("{} {name} deleted", kind.to_ascii_lowercase());
        }
        Command::List(listing) => {
            let line = match listing {
                Listing::Flows {
                    namespace: Some(namespace),
                } => format!("LIST FLOWS {namespace}"),
                Listing::Flows { namespace: None } => "LIST FLOWS".to_owned(),
                Listing::Namespaces => "LIST NAMESPACES".to_owned(),
                Listing::Subscriptions => "LIST SUBSCRIPTIONS".to_owned(),
                Listing::Processors => "LIST PROCESSORS".to_owned(),
            };
            print_lines(&client.data_command(&line).await?);
        }
        Command::Set {
            flow,
            setting,
            value,
        } => {
            let keyword = setting.to_ascii_uppercase();
            match (setting.as_str(), value.is_empty()) {
                ("public" | "private", true) => {
                    client
                        .command(&format!("SET FLOW {flow} {keyword}"))
                        .await?;
                    println!("flow {flow} is {setting}");
                }
                ("public" | "private", false) => {
                    return Err(Failure::new(
                        exit::USAGE,
                        format!("`{setting}` takes no value"),
                    ));
                }
                (_, true) => {
                    return Err(Failure::new(
                        exit::USAGE,
                        format!("give the {setting} (or - to remove it)"),
                    ));
                }
                (_, false) => {
                    let value = value.join(" ");
                    client
                        .command(&format!("SET FLOW {flow} {keyword} {value}"))
                        .await?;
                    println!("flow {flow}: {setting} set");
                }
            }
        }
        Command::Subscribe {
            flow,
            local,
            no_local,
        } => {
            let local = match (local, no_local) {
                (_, true) => None,
                (Some(local), false) => Some(local.clone()),
                (None, false) => {
                    let prefix = session
                        .agent
                        .as_ref()
                        .and_then(|a| a.prefix.clone())
                        .ok_or_else(|| {
                            Failure::new(
                                exit::USAGE,
                                "give --local, or a `prefix` for the agent in the agents file",
                            )
                        })?;
                    Some(format!("{prefix}{flow}"))
                }
            };
            let copy = client.subscribe(flow, local.as_deref()).await?;
            match local {
                // As thesis 7.4.3 prints it.
                Some(local) => {
                    println!("Flow {local} subscription created successfully");
                    println!("Server responded: {local} SUBSCRIBED TO {copy}");
                }
                None => println!("{copy}"),
            }
        }
        Command::Unsubscribe { subscription } => {
            client
                .command(&format!("UNSUBSCRIBE {subscription}"))
                .await?;
            println!("subscription {subscription} ended");
        }
        Command::Processor(ProcessorCommand::Update {
            name,
            plugin,
            settings,
        }) => {
            let mut line = format!("UPDATE PROCESSOR {name}");
            if let Some(plugin) = plugin {
                line.push_str(&format!(" PLUGIN {plugin}"));
            }
            if let Some(settings) = settings {
                line.push_str(&format!(" CONFIG {settings}"));
            }
            client.command(&line).await?;
            println!("processor {name} updated");
        }
        Command::Processor(ProcessorCommand::Pause { name }) => {
            client.command(&format!("PAUSE PROCESSOR {name}")).await?;
            println!("processor {name} paused");
        }
        Command::Processor(ProcessorCommand::Resume { name }) => {
            client.command(&format!("RESUME PROCESSOR {name}")).await?;
            println!("processor {name} resumed");
        }
        Command::Completions { .. } | Command::Login { .. } | Command::Tail { .. } => {}
    }
    let _ = session.client.quit().await;
    Ok(())
}

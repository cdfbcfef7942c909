//! `flow login`: checks an account's credentials with an FNAA and saves
//! them as an agent of the agents file, with the namespaces the account
//! owns, so that later commands need neither options nor DNS.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use super::agents::{Agent, FlowFile, NamespaceEntry};
use super::cli::Global;
use super::connect::{self, LOCAL_FNAA};
use super::exit::{self, Failure};

/// Logs in to `--server` (default: the host on this machine) as `--user`
/// and saves agent `name` in the agents file at `path`.
pub async fn login(
    global: &Global,
    path: &Path,
    mut file: FlowFile,
    name: &str,
    password_stdin: bool,
) -> Result<(), Failure> {
    let server = global
        .server
        .clone()
        .unwrap_or_else(|| LOCAL_FNAA.to_owned());
    let user = global
        .user
        .clone()
        .ok_or_else(|| Failure::new(exit::USAGE, "give the account with --user"))?;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::new(exit::CONFIG, format!("cannot read the password: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        connect::password(None, &user)?
    };
    let mut agent = Agent {
        name: name.to_owned(),
        fqdn: String::new(),
        username: Some(user.clone()),
        password: Some(password),
        prefix: None,
        server: Some(server.clone()),
        tls: global.tls,
        ca: global.ca.clone(),
        mechanism: global.mechanism,
    };
    // The credentials are checked before anything is written.
    let probe = FlowFile {
        agents: vec![agent.clone()],
        namespaces: Vec::new(),
    };
    let mut session = connect::open(global, &probe, None).await?;
    agent.fqdn = session
        .client
        .greeting()
        .split_whitespace()
        .next()
        .unwrap_or("localhost")
        .to_owned();
    let namespaces = session.client.data_command("LIST NAMESPACES").await?;
    let _ = session.client.quit().await;

    file.agents.retain(|a| a.name != name);
    file.namespaces
        .retain(|n| n.agent != name && !namespaces.contains(&n.name));
    file.agents.push(agent);
    file.namespaces
        .extend(namespaces.iter().map(|namespace| NamespaceEntry {
            name: namespace.clone(),
            agent: name.to_owned(),
        }));
    write_private(path, &file)?;
    println!(
        "logged in to {server} as {user}; saved as agent `{name}` in {} (namespaces: {})",
        path.display(),
        if namespaces.is_empty() {
            "none".to_owned()
        } else {
            namespaces.join(", ")
        }
    );
    Ok(())
}

/// Writes the agents file readable only by its owner: it holds passwords.
fn write_private(path: &Path, file: &FlowFile) -> Result<(), Failure> {
    let failed = |e: std::io::Error| {
        Failure::new(
            exit::CANTCREAT,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    let text = serde_yaml_ng::to_string(file)
        .map_err(|e| Failure::new(exit::SOFTWARE, format!("cannot write the agents file: {e}")))?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    // An existing file keeps its mode on open: tighten it first.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    out.write_all(text.as_bytes()).map_err(failed)
}

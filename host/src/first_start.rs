//! The first start of a host: a store without any account gets an
//! administrator and a namespace, so that a newcomer can log in at once.
//!
//! The password comes from `FNAA_ADMIN_PASSWORD`, or is generated and
//! written to `admin-password` next to the store, readable only by the
//! host's user. It is never logged.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fnaa_control::names::DnsName;
use fnaa_control::service::{Principal, Service};
use rand::Rng as _;
use rand::distr::Alphanumeric;

/// The account a first start creates.
pub const ADMIN: &str = "admin";

/// What a first start made.
#[derive(Debug, PartialEq, Eq)]
pub struct FirstStart {
    pub namespace: DnsName,
    /// Where the generated password is; `None` when it came from
    /// `FNAA_ADMIN_PASSWORD`.
    pub password_file: Option<PathBuf>,
}

/// The namespace of a first start, `flows.<domain>`: flow URIs need a
/// domain of at least two labels, so the domain is the FNAP host name
/// without its first label when two remain (`fnaa.unix.ar` gives
/// `flows.unix.ar`), else the whole name when it has two (`fnaa.example`
/// gives `flows.fnaa.example`), else `fnaa.<name>` (`localhost` gives
/// `flows.fnaa.localhost`, which RFC 6761 keeps on this machine).
pub fn namespace_for(hostname: &str) -> anyhow::Result<DnsName> {
    let hostname = hostname.trim_end_matches('.');
    let labels = hostname.split('.').count();
    let domain = match hostname.split_once('.') {
        Some((_, rest)) if labels >= 3 => rest.to_owned(),
        _ if labels == 2 => hostname.to_owned(),
        _ => format!("fnaa.{hostname}"),
    };
    DnsName::parse(&format!("flows.{domain}"))
        .with_context(|| format!("[fnap] hostname `{hostname}` gives no namespace name"))
}

/// Creates the administrator and its namespace when the store holds no
/// account; does nothing otherwise.
pub async fn bootstrap(
    service: &Service,
    hostname: &str,
    store_path: &Path,
) -> anyhow::Result<Option<FirstStart>> {
    let operator = Principal::Operator;
    if !service
        .list_users(&operator)
        .await
        .context("cannot read the accounts")?
        .is_empty()
    {
        return Ok(None);
    }
    let namespace = namespace_for(hostname)?;
    let (password, password_file) = match std::env::var("FNAA_ADMIN_PASSWORD") {
        Ok(password) if !password.is_empty() => (password, None),
        _ => {
            let password: String = rand::rng()
                .sample_iter(&Alphanumeric)
                .take(24)
                .map(char::from)
                .collect();
            let file = store_path
                .parent()
                .map_or_else(PathBuf::new, PathBuf::from)
                .join("admin-password");
            write_private(&file, &password)?;
            (password, Some(file))
        }
    };
    service
        .add_user(&operator, ADMIN, &password)
        .await
        .with_context(|| format!("cannot create the account {ADMIN}"))?;
    service
        .create_namespace(&operator, &namespace, Some(ADMIN))
        .await
        .with_context(|| format!("cannot create the namespace {namespace}"))?;
    Ok(Some(FirstStart {
        namespace,
        password_file,
    }))
}

/// Writes `text` to a new file only its owner may read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    // A file left by an earlier first start whose store was removed is
    // replaced, not appended to.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot replace {}", path.display()));
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_the_host_name() -> anyhow::Result<()> {
        assert_eq!(namespace_for("localhost")?.as_str(), "flows.fnaa.localhost");
        assert_eq!(namespace_for("fnaa.unix.ar")?.as_str(), "flows.unix.ar");
        assert_eq!(
            namespace_for("fnaa.example")?.as_str(),
            "flows.fnaa.example"
        );
        Ok(())
    }
}

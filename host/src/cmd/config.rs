//! `fnaa config example` prints a complete configuration generated from
//! the config structs (`crate::config_example`).
//!
//! `fnaa config check FILE`: validates a configuration without starting
//! anything, printing every problem with the line it is on: each section
//! is read on its own, so one mistake does not hide the next, and then
//! what the host would refuse at start (clear text off loopback, TLS files
//! that cannot be read, a `[flows] broker` that is not configured).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Deserialize as _;

use crate::config::Config;

/// Configuration files.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Checks FILE and prints every problem as `FILE:LINE: problem`; exits
    /// with 1 when there is any.
    Check { file: PathBuf },
    /// Prints a complete `fnaa.toml`: every setting with its documentation,
    /// commented out at its default.
    Example,
}

/// One problem, at a line of the file when known.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub text: String,
}

/// Runs a `fnaa config` command.
pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Example => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(crate::config_example::example().as_bytes()) {
                // `fnaa config example | head` is not a failure.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                written => written.context("cannot write the example")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let problems = check(&text, file.parent().unwrap_or(Path::new(".")));
            for problem in &problems {
                match problem.line {
                    Some(line) => println!("{}:{line}: {}", file.display(), problem.text),
                    None => println!("{}: {}", file.display(), problem.text),
                }
            }
            if problems.is_empty() {
                println!("{}: ok", file.display());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// Every problem of the configuration `text`; relative paths in it are
/// taken from `base` (as the host, started from there, would).
pub fn check(text: &str, base: &Path) -> Vec<Problem> {
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            return vec![Problem {
                line: error.span().map(|span| line_of(text, span.start)),
                text: error.message().to_owned(),
            }];
        }
    };
    let mut problems = Vec::new();
    // Section by section, so that every section's first mistake shows.
    for (section, value) in &table {
        let mut alone = toml::Table::new();
        alone.insert(section.clone(), value.clone());
        if let Err(error) = Config::deserialize(toml::Value::Table(alone)) {
            let message = error.message().to_owned();
            problems.push(Problem {
                line: locate(text, section, &message),
                text: format!("[{section}]: {message}"),
            });
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return problems;
    }
    match Config::parse(text) {
        Ok(config) => semantic(&config, text, base, &mut problems),
        Err(error) => problems.push(Problem {
            line: None,
            text: format!("{error:#}"),
        }),
    }
    problems
}

/// What the host would refuse at start although every field parses.
fn semantic(config: &Config, text: &str, base: &Path, problems: &mut Vec<Problem>) {
    let mut refuse = |section: &str, key: &str, message: String| {
        problems.push(Problem {
            line: locate(text, section, &format!("`{key}`")),
            text: message,
        });
    };
    if let Some(refusal) = config.fnap.cleartext_refusal() {
        refuse("fnap", "listen", refusal);
    }
    if let Some(refusal) = config.grpc.cleartext_refusal() {
        refuse("grpc", "listen", refusal);
    }
    if config.fnap.tls_listen.is_some() && config.fnap.tls.is_none() {
        refuse(
            "fnap",
            "tls_listen",
            "[fnap] tls_listen needs [fnap.tls]".into(),
        );
    }
    let broker = &config.flows.broker;
    if broker != fnaa_dataplane::embedded_mqtt::EMBEDDED_BROKER
        && !config.brokers.connections.contains_key(broker)
    {
        let known: Vec<&str> = config
            .brokers
            .connections
            .keys()
            .map(String::as_str)
            .collect();
        refuse(
            "flows",
            "broker",
            format!(
                "[flows] broker = \"{broker}\" is not in [brokers.connections] (configured: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        );
    }
    let tls_files = [
        ("fnap", config.fnap.tls.as_ref()),
        ("grpc", config.grpc.tls.as_ref()),
    ];
    for (section, files) in tls_files {
        let Some(files) = files else { continue };
        for (key, path) in [
            ("certificate", &files.certificate),
            ("private_key", &files.private_key),
        ] {
            let full = base.join(path);
            if let Err(error) = std::fs::File::open(&full) {
                refuse(
                    section,
                    key,
                    format!(
                        "[{section}.tls] {key}: cannot read {}: {error}",
                        full.display()
                    ),
                );
            }
        }
    }
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The line a problem of `section` is on: the line of the first field the
/// message names in backquotes, within the section, else the section's
/// header (or first key).
fn locate(text: &str, section: &str, message: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let is_header = |line: &str| {
        let line = line.trim_start();
        line.starts_with('[')
            && line
                .trim_start_matches('[')
                .trim_start()
                .strip_prefix(section)
                .is_some_and(|rest| rest.starts_with([']', '.']))
    };
    let is_key = |line: &str, key: &str| {
        line.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(['=', '.']))
    };
    let start = lines
        .iter()
        .position(|line| is_header(line) || is_key(line, section))?;
    let field = message
        .split('`')
        .nth(1)
        .filter(|name| !name.is_empty() && !name.contains(' '));
    if let Some(field) = field {
        for (index, line) in lines.iter().enumerate().skip(start) {
            if index > start && line.trim_start().starts_with('[') && !is_header(line) {
                break;
            }
            if is_key(line, field) {
                return Some(index + 1);
            }
        }
    }
    Some(start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(Option<usize>, String)> {
        check(text, Path::new("/nonexistent"))
            .into_iter()
            .map(|p| (p.line, p.text))
            .collect()
    }

    #[test]
    fn an_empty_file_is_the_embedded_defaults() {
        assert_eq!(problems(""), []);
    }

    #[test]
    fn every_section_reports_its_own_mistake_with_its_line() {
        let found = problems(
            "[fnap]\nhostname = \"h\"\nlisen = \"1\"\n\n[flows]\nbatch_size = 10\nbrokr = \"x\"\n\n[nope]\na = 1\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].0, Some(3), "{found:?}");
        assert!(found[0].1.contains("lisen"), "{found:?}");
        assert_eq!(found[1].0, Some(7), "{found:?}");
        assert!(found[1].1.contains("brokr"), "{found:?}");
        assert_eq!(found[2].0, Some(9), "{found:?}");
        assert!(found[2].1.contains("nope"), "{found:?}");
    }

    #[test]
    fn syntax_errors_have_their_line() {
        let found = problems("[fnap]\nhostname = \"h\"\nlisten = \n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Some(3), "{found:?}");
    }

    #[test]
    fn what_the_host_would_refuse_is_reported() {
        let found = problems(
            "[fnap]\nlisten = \"0.0.0.0:61000\"\n[fnap.tls]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n[flows]\nbroker = \"kafka\"\n",
        );
        let texts: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(texts[0].contains("[flows] broker = \"kafka\""), "{found:?}");
        assert_eq!(found[0].0, Some(7));
        assert!(
            texts[1].contains("certificate: cannot read /nonexistent/c.pem"),
            "{found:?}"
        );
        assert_eq!(found[1].0, Some(4));
        assert!(texts[2].contains("private_key"), "{found:?}");
        let open = problems("[fnap]\nlisten = \"0.0.0.0:61000\"\n");
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0].0, Some(2));
        assert!(
            open[0].1.contains("allow_cleartext_off_loopback"),
            "{open:?}"
        );
    }

    #[test]
    fn the_examples_have_only_the_problems_of_their_placeholder_files() {
        let text = include_str!("../../../examples/fnaa.toml");
        for problem in check(text, Path::new("/nonexistent")) {
            assert!(problem.text.contains("cannot read"), "{problem:?}");
        }
    }

    #[test]
    fn the_deployment_examples_carry_one_configuration_that_checks() {
        let file = include_str!("../../../examples/deploy/fnaa.toml");
        let problems = check(file, Path::new("/nonexistent"));
        assert_eq!(problems.len(), 2, "{problems:?}");
        for problem in problems {
            assert!(
                problem.text.contains("cannot read /etc/fnaa/tls/"),
                "{problem:?}"
            );
        }
        let manifest = include_str!("../../../examples/deploy/kubernetes.yaml");
        let config_map = serde_yaml_ng::Deserializer::from_str(manifest)
            .map(|document| serde_yaml_ng::Value::deserialize(document).unwrap_or_default())
            .find(|document| document["kind"] == "ConfigMap")
            .expect("the manifest has a ConfigMap");
        assert_eq!(config_map["data"]["fnaa.toml"].as_str(), Some(file));
    }
}

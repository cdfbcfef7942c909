//! One module per verb: its syntax (`USAGE`, used by HELP and errors), its
//! parsed form and its parser.

pub mod authenticate;
pub mod create;
pub mod delete;
pub mod describe;
pub mod help;
pub mod list;
pub mod noop;
pub mod pause;
pub mod quit;
pub mod relay;
pub mod resume;
pub mod set;
pub mod starttls;
pub mod subscribe;
pub mod unsubscribe;
pub mod update;

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;
use crate::store::PluginRef;

/// Every usage line, in the order HELP prints them.
pub const ALL_USAGES: &[&str] = &[
    authenticate::USAGE,
    starttls::USAGE,
    create::USAGE_FLOW,
    create::USAGE_NAMESPACE,
    create::USAGE_PROCESSOR,
    describe::USAGE,
    delete::USAGE,
    list::USAGE,
    set::USAGE,
    subscribe::USAGE,
    unsubscribe::USAGE,
    relay::USAGE,
    update::USAGE,
    pause::USAGE,
    resume::USAGE,
    help::USAGE,
    noop::USAGE,
    quit::USAGE,
];

/// `name[@version]`: a plugin and optionally its version.
pub(crate) fn parse_plugin(args: &Args<'_>, word: &str) -> Result<PluginRef, ParseError> {
    let (name, version) = match word.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (word, None),
    };
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if !valid_name {
        return Err(args.error(format!("invalid plugin name `{name}`")));
    }
    if let Some(version) = version {
        let valid = !version.is_empty()
            && version.len() <= 64
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
        if !valid {
            return Err(args.error(format!("invalid plugin version `{version}`")));
        }
    }
    Ok(PluginRef {
        name: name.to_owned(),
        version: version.map(str::to_owned),
    })
}

/// `flow[,flow...]`.
pub(crate) fn parse_flow_list(args: &Args<'_>, word: &str) -> Result<Vec<DnsName>, ParseError> {
    let names: Vec<DnsName> = word
        .split(',')
        .filter(|part| !part.is_empty())
        .map(crate::fnap::command::parse_name)
        .collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err(args.error("empty flow list"));
    }
    Ok(names)
}

/// A JSON object given as the rest of the line (`CONFIG {...}`).
pub(crate) fn parse_config(args: &Args<'_>, text: &str) -> Result<serde_json::Value, ParseError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(args.error("CONFIG must be a JSON object")),
        Err(error) => Err(args.error(format!("CONFIG is not valid JSON: {error}"))),
    }
}

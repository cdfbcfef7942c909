//! `UPDATE PROCESSOR <name> [PLUGIN <plugin>@<version>] [CONFIG <json>]`.

use crate::fnap::cmd::{parse_config, parse_plugin};
use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;
use crate::store::PluginRef;

pub const USAGE: &str =
    "UPDATE PROCESSOR <name> [PLUGIN <plugin>[@<version>]] [CONFIG <json-object>]";

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub processor: DnsName,
    pub plugin: Option<PluginRef>,
    pub config: Option<serde_json::Value>,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Update, ParseError> {
    let mut args = args.usage(USAGE);
    if args.keyword("PROCESSOR")? != "PROCESSOR" {
        return Err(args.error("only processors can be updated"));
    }
    let processor = args.name("processor name")?;
    let (mut plugin, mut config) = (None, None);
    while let Some(word) = args.word() {
        match word.to_ascii_uppercase().as_str() {
            "PLUGIN" if plugin.is_none() => {
                let value = args.required("plugin")?;
                plugin = Some(parse_plugin(&args, value)?);
            }
            "CONFIG" => {
                let rest = args.rest();
                config = Some(parse_config(&args, rest)?);
            }
            other => return Err(args.error(format!("unexpected or repeated `{other}`"))),
        }
    }
    if plugin.is_none() && config.is_none() {
        return Err(args.error("nothing to update: give PLUGIN, CONFIG or both"));
    }
    Ok(Update {
        processor,
        plugin,
        config,
    })
}

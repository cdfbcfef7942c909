//! `CREATE FLOW`, `CREATE NAMESPACE`, `CREATE PROCESSOR`.

use crate::fnap::cmd::{parse_config, parse_flow_list, parse_plugin};
use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;
use crate::store::PluginRef;

pub const USAGE_FLOW: &str = "CREATE FLOW <flow> [PUBLIC]";
pub const USAGE_NAMESPACE: &str = "CREATE NAMESPACE <namespace>";
pub const USAGE_PROCESSOR: &str = "CREATE PROCESSOR <name> PLUGIN <plugin>[@<version>] INPUT <flow>[,<flow>...] OUTPUT <flow>[,<flow>...] [CONFIG <json-object>]";

#[derive(Debug, Clone, PartialEq)]
pub enum Create {
    Flow { name: DnsName, public: bool },
    Namespace { name: DnsName },
    Processor(ProcessorSpec),
}

/// A processor instance to create: a plugin wiring input flows to output
/// flows (thesis 4.1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorSpec {
    pub name: DnsName,
    pub plugin: PluginRef,
    pub inputs: Vec<DnsName>,
    pub outputs: Vec<DnsName>,
    pub config: serde_json::Value,
}

pub(crate) fn parse(args: Args<'_>) -> Result<Create, ParseError> {
    let mut args = args.usage("CREATE FLOW|NAMESPACE|PROCESSOR ...");
    match args.keyword("FLOW, NAMESPACE or PROCESSOR")?.as_str() {
        "FLOW" => {
            let mut args = args.usage(USAGE_FLOW);
            let name = args.name("flow name")?;
            let public = match args.word() {
                None => false,
                Some(word) if word.eq_ignore_ascii_case("PUBLIC") => true,
                Some(word) if word.eq_ignore_ascii_case("PRIVATE") => false,
                Some(other) => return Err(args.error(format!("expected PUBLIC, got `{other}`"))),
            };
            args.end()?;
            Ok(Create::Flow { name, public })
        }
        "NAMESPACE" => {
            let mut args = args.usage(USAGE_NAMESPACE);
            let name = args.name("namespace")?;
            args.end()?;
            Ok(Create::Namespace { name })
        }
        "PROCESSOR" => parse_processor(args.usage(USAGE_PROCESSOR)).map(Create::Processor),
        other => Err(args.error(format!("cannot create `{other}`"))),
    }
}

fn parse_processor(mut args: Args<'_>) -> Result<ProcessorSpec, ParseError> {
    let name = args.name("processor name")?;
    let (mut plugin, mut inputs, mut outputs, mut config) = (None, None, None, None);
    while let Some(word) = args.word() {
        match word.to_ascii_uppercase().as_str() {
            "PLUGIN" if plugin.is_none() => {
                let value = args.required("plugin")?;
                plugin = Some(parse_plugin(&args, value)?);
            }
            "INPUT" if inputs.is_none() => {
                let value = args.required("input flows")?;
                inputs = Some(parse_flow_list(&args, value)?);
            }
            "OUTPUT" if outputs.is_none() => {
                let value = args.required("output flows")?;
                outputs = Some(parse_flow_list(&args, value)?);
            }
            "CONFIG" => {
                let rest = args.rest();
                config = Some(parse_config(&args, rest)?);
            }
            other => return Err(args.error(format!("unexpected or repeated `{other}`"))),
        }
    }
    Ok(ProcessorSpec {
        name,
        plugin: plugin.ok_or_else(|| args.error("missing PLUGIN"))?,
        inputs: inputs.ok_or_else(|| args.error("missing INPUT"))?,
        outputs: outputs.ok_or_else(|| args.error("missing OUTPUT"))?,
        config: config.unwrap_or_else(|| serde_json::Value::Object(Default::default())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fnap::Command;

    #[test]
    fn processor() {
        let parsed = Command::parse(
            r#"CREATE PROCESSOR enrich.flows.unix.ar PLUGIN enrich@1.2.0 INPUT a.flows.unix.ar,b.flows.unix.ar OUTPUT c.flows.unix.ar CONFIG {"k": "v w"}"#,
        );
        let Ok(Command::Create(Create::Processor(spec))) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(spec.plugin.version.as_deref(), Some("1.2.0"));
        assert_eq!(spec.inputs.len(), 2);
        assert_eq!(spec.config["k"], "v w");
        assert!(Command::parse("CREATE PROCESSOR p.a.b PLUGIN x INPUT a.b").is_err());
        assert!(
            Command::parse("CREATE PROCESSOR p.a.b PLUGIN x INPUT a.b OUTPUT c.d CONFIG [1]")
                .is_err()
        );
    }
}

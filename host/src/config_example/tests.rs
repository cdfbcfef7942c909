use serde_json::Value;

use super::*;

fn schema() -> Schema {
    schemars::schema_for!(Config)
}

fn schemas(schema: &Schema) -> Schemas<'_> {
    Schemas {
        definitions: schema
            .get("$defs")
            .and_then(Value::as_object)
            .expect("$defs"),
        orders: field_orders(),
    }
}

/// Every struct of the schema: the root, the definitions, and the variants
/// of tagged enums (whose structs are inlined there), by name.
fn structs<'s>(schema: &'s Schema, schemas: &Schemas<'s>) -> Vec<Table<'s>> {
    let root = schema.as_object().map(|root| Table {
        name: root.get("title").and_then(Value::as_str).unwrap_or(""),
        schema: root,
    });
    let mut tables: Vec<Table<'s>> = root.into_iter().collect();
    for (name, definition) in schemas.definitions {
        let Some(definition) = definition.as_object() else {
            continue;
        };
        if definition.contains_key("properties") {
            tables.push(Table {
                name,
                schema: definition,
            });
        }
        let variants = schemas.variants(definition).unwrap_or_default();
        tables.extend(variants.into_iter().map(|variant| variant.fields));
    }
    tables
}

/// The fields of a struct, but a variant's tag.
fn fields<'s>(table: &Table<'s>) -> impl Iterator<Item = (&'s String, &'s Value)> {
    table
        .schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, property)| property.get("const").is_none())
}

/// The example with every default setting of a table that is written out
/// uncommented: what a user gets by removing every `#` that can be removed
/// without having to choose a value.
fn with_defaults_uncommented(example: &str) -> (String, usize) {
    let mut written = true;
    let mut uncommented = 0;
    let mut out = String::new();
    for line in example.lines() {
        if line.starts_with('[') {
            written = true;
        } else if line.starts_with("#[") {
            written = false;
        }
        let setting = line
            .strip_prefix('#')
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_lowercase()));
        match setting {
            Some(setting) if written && !setting.contains(" = ...") => {
                out.push_str(setting);
                uncommented += 1;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    (out, uncommented)
}

#[test]
fn the_example_parses_as_it_is() {
    let example = example();
    let config = Config::parse(&example).expect("the example parses");
    assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
}

#[test]
fn uncommented_defaults_are_the_defaults() {
    let (text, uncommented) = with_defaults_uncommented(&example());
    assert!(uncommented >= 40, "only {uncommented} settings uncommented");
    for setting in [
        "[fnap]\n",
        "\nlisten = \"127.0.0.1:61000\"\n",
        "\nhostname = \"localhost\"\n",
        "[grpc]\n",
        "\nlisten = \"127.0.0.1:50051\"\n",
        "[store]\n",
        "\npath = \"fnaa-state.redb\"\n",
        "\nscram_iterations = 4096\n",
        "[runtime]\n",
        "\nmax_memory_bytes = 67108864\n",
        "[flows]\n",
        "\nbroker = \"embedded\"\n",
        "[brokers.embedded_mqtt]\n",
        "\nmode = \"auto\"  # \"auto\", \"always\" or \"never\"\n",
        "[peers]\n",
        "[dns]\n",
    ] {
        assert!(text.contains(setting), "no {setting:?} in\n{text}");
    }
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    // Every section, compared in full (`Debug` shows every field).
    let defaults = Config::default();
    assert_eq!(format!("{:?}", config.fnap), format!("{:?}", defaults.fnap));
    assert_eq!(format!("{:?}", config.grpc), format!("{:?}", defaults.grpc));
    assert_eq!(
        format!("{:?}", config.store),
        format!("{:?}", defaults.store)
    );
    assert_eq!(
        format!("{:?}", config.runtime),
        format!("{:?}", defaults.runtime)
    );
    assert_eq!(
        format!("{:?}", config.flows),
        format!("{:?}", defaults.flows)
    );
    assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
}

#[test]
fn every_field_is_shown_and_documented() {
    let schema = schema();
    let rendered = render(&schema);
    let mut missing = Vec::new();
    let mut undocumented = Vec::new();
    for table in structs(&schema, &schemas(&schema)) {
        let name = table.name;
        for (key, property) in fields(&table) {
            if !rendered.emitted.contains(&(name.to_owned(), key.clone())) {
                missing.push(format!("{name}.{key}"));
            }
            if description(property).is_none_or(|doc| doc.trim().is_empty()) {
                undocumented.push(format!("{name}.{key}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in the example: {missing:?}");
    assert!(
        undocumented.is_empty(),
        "fields without `///` docs: {undocumented:?}"
    );
}

#[test]
fn every_variant_is_shown_and_documented() {
    let schema = schema();
    let text = render(&schema).text;
    let schemas = schemas(&schema);
    let mut enums = 0;
    for (name, definition) in schemas.definitions {
        let Some(variants) = definition.as_object().and_then(|d| schemas.variants(d)) else {
            continue;
        };
        enums += 1;
        for variant in variants {
            let line = format!("\n#{} = {}\n", variant.tag, quoted(variant.value));
            assert!(text.contains(&line), "{name}: no {line:?}");
            assert!(
                variant
                    .description
                    .is_some_and(|doc| !doc.trim().is_empty()),
                "{name}: variant {} has no `///` docs",
                variant.value
            );
        }
    }
    // `[dns.registry]` and `[brokers.connections.<name>]`.
    assert_eq!(enums, 2);
}

#[test]
fn every_struct_has_its_declaration_order() {
    let schema = schema();
    let schemas = schemas(&schema);
    for table in structs(&schema, &schemas) {
        let mut shown: Vec<&str> = fields(&table).map(|(key, _)| key.as_str()).collect();
        let name = table.name;
        let declared = schemas.orders.get(name).unwrap_or_else(|| {
            panic!("{shown:?} ({name}): add its struct to field_order::field_orders()")
        });
        let mut declared: Vec<&str> = declared.to_vec();
        declared.sort_unstable();
        shown.sort_unstable();
        assert_eq!(declared, shown, "{name}");
    }
}

#[test]
fn fields_are_in_declaration_order() {
    let text = example();
    let fnap = text.find("\n[fnap]\n").expect("[fnap]");
    let listen = text[fnap..].find("\n#listen = ").expect("listen");
    let tls_listen = text[fnap..].find("\n#tls_listen = ").expect("tls_listen");
    let shutdown = text[fnap..]
        .find("\n#shutdown_grace_secs = ")
        .expect("grace");
    let tls = text[fnap..].find("\n#[fnap.tls]\n").expect("[fnap.tls]");
    assert!(listen < tls_listen && tls_listen < shutdown && shutdown < tls);
}

#[test]
fn pipeline_endpoints_show_every_broker_type() {
    let expected: BTreeSet<&str> = ["broker", "connector", "connector_config"]
        .into_iter()
        .chain(fnaa_dataplane::config::BrokerConfig::KINDS.iter().copied())
        .collect();
    let schema = schema();
    for name in ["SourceFields", "SinkFields"] {
        let definition = schema
            .pointer(&format!("/$defs/{name}"))
            .and_then(Value::as_object)
            .expect(name);
        let table = Table {
            name,
            schema: definition,
        };
        let shown: BTreeSet<&str> = fields(&table).map(|(key, _)| key.as_str()).collect();
        assert_eq!(shown, expected, "{name}");
    }
    let text = example();
    for section in [
        "#[pipelines.source.kafka]\n",
        "#[pipelines.sink.nats]\n",
        "#[pipelines.dead_letter]\n# The same settings as `[pipelines.sink]`.\n",
    ] {
        assert!(text.contains(section), "no {section:?}");
    }
}

#[test]
fn secrets_have_no_default() {
    let text = example();
    let mut secrets = 0;
    for setting in ["password", "token", "secret", "properties", "users"] {
        let prefix = format!("#{setting} = ");
        for line in text.lines().filter(|line| line.starts_with(&prefix)) {
            assert!(line.contains(" = ...  # "), "{line}");
            assert!(line.contains("secret string"), "{line}");
            secrets += 1;
        }
    }
    assert!(secrets >= 10, "only {secrets} secret settings found");
}

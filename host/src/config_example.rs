//! `fnaa config example`: a complete, commented `fnaa.toml` written from the
//! configuration structs themselves, so that it cannot drift from the code.
//! Their `///` docs and default values come from their JSON Schema (derived
//! with `schemars`: a default is the value `Default` or serde's `default`
//! gives, and only a type that is `Serialize` has one, which secrets never
//! are); the order of their fields comes from serde ([`field_order`]).
//!
//! How the example is laid out:
//!
//! * Docs are `# ` lines; settings are `#key = value`, commented out at
//!   their default (`#key = ...` and what it takes when there is none), so
//!   the file parses as it is and means an empty configuration.
//! * A section that an empty table leaves at its defaults is written as a
//!   header (`[fnap]`); one that changes the configuration by being there
//!   (optional sections such as `[ingest]` or `[fnap.tls]`, entries of
//!   `[brokers.connections.<name>]`, `[[pipelines]]`) is commented out
//!   whole, header included (`#[ingest]`).
//! * A section chosen by a tag (`type = "..."`) is shown once per variant.
//! * A table's settings come before its sub-tables, as TOML requires.

mod field_order;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

use schemars::Schema;
use serde_json::{Map, Value};

use crate::config::Config;
use field_order::{FieldOrders, field_orders};

/// The example `fnaa.toml`: every setting, with its docs, commented out at
/// its default.
pub fn example() -> String {
    render(&schemars::schema_for!(Config)).text
}

const INTRODUCTION: &str = "\
fnaa.toml: the configuration of the FNAA host (`fnaa serve --config fnaa.toml`).

Written by `fnaa config example` from the configuration's own code: its
documentation and its defaults. Every setting is commented out at its
default value, so this file runs the host as an empty one would. To change
a setting, remove the `#` in front of it, and in front of its `[section]`
header when that is commented out too: such a section is off until it is
written (`[ingest]`, an entry of `[brokers.connections]`, a `[[pipelines]]`
entry). `key = ...` marks a setting without a default; the comment after
it says what it takes. `<name>` stands for a name of your choosing.";

/// The example and, for the tests, every `(struct, field)` it shows.
struct Rendered {
    text: String,
    #[cfg_attr(not(test), allow(dead_code))]
    emitted: BTreeSet<(String, String)>,
}

fn render(schema: &Schema) -> Rendered {
    let root = schema.as_value();
    let no_definitions = Map::new();
    let definitions = root
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&no_definitions);
    let mut writer = Writer {
        schemas: Schemas {
            definitions,
            orders: field_orders(),
        },
        text: String::new(),
        emitted: BTreeSet::new(),
        shown: HashMap::new(),
    };
    writer.comment(INTRODUCTION);
    if let Some(table) = root.as_object() {
        let name = table.get("title").and_then(Value::as_str).unwrap_or("");
        writer.blank();
        writer.comment(description(root).unwrap_or(""));
        writer.table(
            "",
            &[],
            Table {
                name,
                schema: table,
            },
            Header::None,
            None,
        );
    }
    Rendered {
        text: writer.text,
        emitted: writer.emitted,
    }
}

/// A struct of the configuration: a TOML table.
#[derive(Clone, Copy)]
struct Table<'s> {
    /// Its name among the schema's definitions, which orders its fields.
    name: &'s str,
    schema: &'s Map<String, Value>,
}

impl<'s> Table<'s> {
    fn description(self) -> Option<&'s str> {
        self.schema.get("description").and_then(Value::as_str)
    }
}

/// One field of a table.
struct Property<'s> {
    key: &'s str,
    schema: &'s Value,
    required: bool,
}

/// One variant of an enum chosen by a tag (`type = "kafka"`).
struct Variant<'s> {
    tag: &'s str,
    value: &'s str,
    description: Option<&'s str>,
    fields: Table<'s>,
}

/// How a field is written in TOML.
enum Shape<'s> {
    /// `key = value`.
    Value,
    /// A table of its own, `[path.key]`.
    Table(Table<'s>),
    /// A table whose fields depend on its tag, one block per variant.
    Tagged(Option<&'s str>, Vec<Variant<'s>>),
    /// Tables by name, `[path.key.<name>]`, of this shape.
    Named(Box<Shape<'s>>),
    /// An array of tables, `[[path.key]]`.
    Array(Table<'s>),
}

/// How a table's header is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    /// The root table has none.
    None,
    /// `[path]`: the table is there, at its defaults.
    Written,
    /// `#[path]`: the table is there only once uncommented.
    CommentedOut,
    /// `#[[path]]`: an entry of an array of tables.
    CommentedOutEntry,
}

/// The definitions a schema refers to, and the order of the structs'
/// fields.
struct Schemas<'s> {
    definitions: &'s Map<String, Value>,
    orders: FieldOrders,
}

impl<'s> Schemas<'s> {
    /// `schema` with its `$ref`s followed, and the name of the definition
    /// it ends at.
    fn resolve(&self, mut schema: &'s Value) -> (Option<&'s str>, &'s Value) {
        let mut name = None;
        // Bounded: a definition may refer to another, never to itself here.
        for _ in 0..8 {
            let Some(target) = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|reference| reference.strip_prefix("#/$defs/"))
            else {
                break;
            };
            let Some(definition) = self.definitions.get(target) else {
                break;
            };
            name = Some(target);
            schema = definition;
        }
        (name, schema)
    }

    /// The shape of a field whose schema is `schema`.
    fn shape(&self, schema: &'s Value) -> Shape<'s> {
        let (name, schema) = self.resolve(non_null(schema));
        let Some(object) = schema.as_object() else {
            return Shape::Value;
        };
        if object.contains_key("properties") {
            return Shape::Table(Table {
                name: name.unwrap_or(""),
                schema: object,
            });
        }
        if let Some(variants) = self.variants(object) {
            return Shape::Tagged(description(schema), variants);
        }
        if let Some(values) = object.get("additionalProperties").filter(|v| v.is_object()) {
            return match self.shape(values) {
                inner @ (Shape::Table(_) | Shape::Tagged(..)) => Shape::Named(Box::new(inner)),
                _ => Shape::Value,
            };
        }
        if let Some(items) = object.get("items")
            && let Shape::Table(table) = self.shape(items)
        {
            return Shape::Array(table);
        }
        Shape::Value
    }

    /// The variants of an internally tagged enum: each a table with one
    /// constant property, the tag. `None` for any other schema.
    fn variants(&self, object: &'s Map<String, Value>) -> Option<Vec<Variant<'s>>> {
        let entries = object.get("oneOf")?.as_array()?;
        entries
            .iter()
            .map(|entry| {
                let own = entry.get("properties")?.as_object()?;
                let (tag, value) = own.iter().find_map(|(key, property)| {
                    Some((key.as_str(), property.get("const")?.as_str()?))
                })?;
                let (name, body) = self.resolve(entry);
                let fields = match (name, body.as_object()) {
                    (Some(name), Some(fields)) if fields.contains_key("properties") => Table {
                        name,
                        schema: fields,
                    },
                    // A struct with `deny_unknown_fields` is inlined in its
                    // variant, tag included: known by its fields.
                    _ => Table {
                        name: self.struct_with_fields(own.keys().filter(|key| *key != tag)),
                        schema: entry.as_object()?,
                    },
                };
                Some(Variant {
                    tag,
                    value,
                    description: description(entry),
                    fields,
                })
            })
            .collect()
    }

    /// The name of the one struct that declares exactly `fields`; `""` when
    /// none or several do.
    fn struct_with_fields<'k>(&self, fields: impl Iterator<Item = &'k String>) -> &'static str {
        let mut fields: Vec<&str> = fields.map(String::as_str).collect();
        fields.sort_unstable();
        let declares_them = |declared: &[&str]| {
            let mut declared = declared.to_vec();
            declared.sort_unstable();
            declared == fields
        };
        let mut matching = self
            .orders
            .iter()
            .filter(|(_, declared)| declares_them(declared))
            .map(|(name, _)| *name);
        match (matching.next(), matching.next()) {
            (Some(name), None) => name,
            _ => "",
        }
    }
}

/// Writes the example.
struct Writer<'s> {
    schemas: Schemas<'s>,
    text: String,
    emitted: BTreeSet<(String, String)>,
    /// The header of the table each struct was first shown under.
    shown: HashMap<&'s str, String>,
}

impl<'s> Writer<'s> {
    /// The table at `path`: its docs and header, a `tag` first when it is a
    /// variant, its settings, then its sub-tables.
    fn table(
        &mut self,
        path: &str,
        docs: &[Option<&str>],
        table: Table<'s>,
        header: Header,
        tag: Option<(&str, &str)>,
    ) {
        let written_before = match table.name {
            "" => None,
            name => self.shown.get(name).cloned(),
        };
        let shown_as = match header {
            Header::CommentedOutEntry => format!("[[{path}]]"),
            _ => format!("[{path}]"),
        };
        if header != Header::None {
            self.blank();
            // A struct shown before: its fields are not repeated, nor its docs.
            self.docs(match written_before {
                Some(_) => docs.get(..1).unwrap_or(docs),
                None => docs,
            });
            let comment = if header == Header::Written { "" } else { "#" };
            self.text.push_str(&format!("{comment}{shown_as}\n"));
        }
        if let Some(first) = written_before {
            self.comment(&format!("The same settings as `{first}`."));
            return;
        }
        if !table.name.is_empty() {
            self.shown.insert(table.name, shown_as);
        }
        if let Some((key, value)) = tag {
            self.text.push_str(&format!("#{key} = {}\n", quoted(value)));
            self.emitted.insert((table.name.to_owned(), key.to_owned()));
        }
        let properties = self.properties(table, tag.map(|(key, _)| key));
        let (values, tables): (Vec<_>, Vec<_>) = properties
            .into_iter()
            .partition(|p| matches!(self.schemas.shape(p.schema), Shape::Value));
        for property in &values {
            self.blank();
            self.comment(description(property.schema).unwrap_or(""));
            self.setting(property);
        }
        let written = header == Header::Written || header == Header::None;
        for property in &tables {
            self.sub_table(path, property, written);
        }
        for property in values.iter().chain(&tables) {
            let field = (table.name.to_owned(), property.key.to_owned());
            self.emitted.insert(field);
        }
    }

    /// A field that is a table (or tables) of its own. It is written out
    /// only when its parent is and it is there by default.
    fn sub_table(&mut self, path: &str, property: &Property<'s>, parent_written: bool) {
        let path = if path.is_empty() {
            property.key.to_owned()
        } else {
            format!("{path}.{}", property.key)
        };
        let doc = description(property.schema);
        match self.schemas.shape(property.schema) {
            Shape::Table(table) => {
                let optional = !std::ptr::eq(non_null(property.schema), property.schema);
                let header = if parent_written && !optional && !property.required {
                    Header::Written
                } else {
                    Header::CommentedOut
                };
                self.table(&path, &[doc, table.description()], table, header, None);
            }
            Shape::Tagged(enum_doc, variants) => self.variants(&path, &[doc, enum_doc], variants),
            Shape::Named(inner) => {
                let path = format!("{path}.<name>");
                match *inner {
                    Shape::Table(table) => {
                        let docs = [doc, table.description()];
                        self.table(&path, &docs, table, Header::CommentedOut, None);
                    }
                    Shape::Tagged(enum_doc, variants) => {
                        self.variants(&path, &[doc, enum_doc], variants);
                    }
                    _ => {}
                }
            }
            Shape::Array(table) => {
                let docs = [doc, table.description()];
                self.table(&path, &docs, table, Header::CommentedOutEntry, None);
            }
            Shape::Value => self.setting(property),
        }
    }

    /// One commented-out table per variant of a tagged enum, after the docs
    /// of the field and of the enum.
    fn variants(&mut self, path: &str, docs: &[Option<&str>], variants: Vec<Variant<'s>>) {
        self.blank();
        self.docs(docs);
        for variant in variants {
            let docs = [variant.description, variant.fields.description()];
            let tag = Some((variant.tag, variant.value));
            self.table(path, &docs, variant.fields, Header::CommentedOut, tag);
        }
    }

    /// `#key = default`, or `#key = ...` and what it takes.
    fn setting(&mut self, property: &Property<'s>) {
        let (_, schema) = self.schemas.resolve(non_null(property.schema));
        let kind = self.kind(schema, false);
        let default = property
            .schema
            .get("default")
            .filter(|value| !value.is_null())
            .and_then(|value| toml::Value::try_from(value).ok());
        let key = property.key;
        let line = match default {
            Some(value) if allowed_values(schema).is_some() => {
                format!("#{key} = {value}  # {kind}")
            }
            Some(value) => format!("#{key} = {value}"),
            None if property.required => format!("#{key} = ...  # {kind}, required"),
            None => format!("#{key} = ...  # {kind}"),
        };
        self.text.push_str(&line);
        self.text.push('\n');
    }

    /// What a value of `schema` is, in words: `integer`, `array of
    /// strings`, `"auto", "always" or "never"`.
    fn kind(&self, schema: &'s Value, plural: bool) -> String {
        let (_, schema) = self.schemas.resolve(schema);
        let s = if plural { "s" } else { "" };
        if let Some(values) = allowed_values(schema) {
            return or_list(values.iter().map(|value| quoted(value)).collect());
        }
        if schema.get("writeOnly").and_then(Value::as_bool) == Some(true) {
            return format!("secret string{s}");
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let kinds = types
            .into_iter()
            .filter(|kind| *kind != "null")
            .map(|kind| match kind {
                "array" => match schema.get("items") {
                    Some(items) => format!("array{s} of {}", self.kind(items, true)),
                    None => format!("array{s}"),
                },
                "object" => match schema.get("additionalProperties").filter(|v| v.is_object()) {
                    Some(values) => format!("table{s} of {}", self.kind(values, true)),
                    None => format!("table{s}"),
                },
                "boolean" if !plural => "true or false".to_owned(),
                "string" => match schema.get("format").and_then(Value::as_str) {
                    Some(format) => format!("string{s} ({format})"),
                    None => format!("string{s}"),
                },
                other => format!("{other}{s}"),
            })
            .collect();
        match or_list(kinds) {
            kinds if kinds.is_empty() => format!("value{s}"),
            kinds => kinds,
        }
    }

    /// The fields of `table` but `skip`, in declaration order.
    fn properties(&self, table: Table<'s>, skip: Option<&str>) -> Vec<Property<'s>> {
        let Some(properties) = table.schema.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        let declared = self
            .schemas
            .orders
            .get(table.name)
            .copied()
            .unwrap_or_default();
        let mut keys: Vec<&'s str> = Vec::new();
        for key in declared {
            if let Some((key, _)) = properties.get_key_value(*key) {
                keys.push(key);
            }
        }
        for key in properties.keys() {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
        let required: Vec<&str> = match table.schema.get("required") {
            Some(Value::Array(required)) => required.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        keys.into_iter()
            .filter(|key| Some(*key) != skip)
            .filter_map(|key| {
                Some(Property {
                    key,
                    schema: properties.get(key)?,
                    required: required.contains(&key),
                })
            })
            .collect()
    }

    /// The docs of a table: each text once, a `#` line between them.
    fn docs(&mut self, docs: &[Option<&str>]) {
        let mut written: Vec<&str> = Vec::new();
        for doc in docs.iter().flatten() {
            if doc.trim().is_empty() || written.contains(doc) {
                continue;
            }
            if !written.is_empty() {
                self.text.push_str("#\n");
            }
            self.comment(doc);
            written.push(doc);
        }
    }

    /// `text` as `# ` lines, rustdoc's link brackets dropped.
    fn comment(&mut self, text: &str) {
        let text = text.replace("[`", "`").replace("`]", "`");
        for line in text.lines() {
            match line.trim_end() {
                "" => self.text.push_str("#\n"),
                line => self.text.push_str(&format!("# {line}\n")),
            }
        }
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }
}

/// The schema of a value that may be absent, without the absence.
fn non_null(schema: &Value) -> &Value {
    let Some(options) = schema.get("anyOf").and_then(Value::as_array) else {
        return schema;
    };
    match options.as_slice() {
        [value, null] | [null, value] if null.get("type") == Some(&Value::from("null")) => value,
        _ => schema,
    }
}

fn description(schema: &Value) -> Option<&str> {
    schema.get("description").and_then(Value::as_str)
}

/// The strings an enum of unit variants takes, when `schema` is one.
fn allowed_values(schema: &Value) -> Option<Vec<&str>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().map(Value::as_str).collect();
    }
    let variants = schema.get("oneOf")?.as_array()?;
    variants
        .iter()
        .map(|variant| variant.get("const")?.as_str())
        .collect()
}

/// `text` as a TOML string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(mut items: Vec<String>) -> String {
    match items.pop() {
        None => String::new(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} or {last}", items.join(", ")),
    }
}

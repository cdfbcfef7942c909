//! String templates over event attributes and configuration variables, for
//! destinations (topic, exchange), AMQP routing keys and Kafka keys.
//!
//! Syntax: literal text with placeholders in braces.
//!
//! * `{name}`: the event attribute `name` (`type`, `source`, `subject`, an
//!   extension such as `category`, ...), as text;
//! * `{name:-fallback}`: the same, or `fallback` when the event lacks it;
//! * `{var.NAME}`: the configuration value given as `var.NAME`;
//! * `{{` and `}}`: literal braces.
//!
//! For example `kytos.{category}` and `{category}.{type}` give exchange
//! `kytos.operational` and routing key `operational.kytos/topology.link_up`.

use std::borrow::Cow;
use std::fmt;

use crate::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Attribute {
        name: String,
        fallback: Option<String>,
    },
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

/// Why a template cannot be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template `{template}`: {reason}")]
    Syntax { template: String, reason: String },
    #[error(
        "template `{template}`: the event has no attribute `{name}` (write `{{{name}:-fallback}}` for a default)"
    )]
    MissingAttribute { template: String, name: String },
    #[error("template `{template}`: no configuration value `var.{name}`")]
    MissingVar { template: String, name: String },
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let syntax = |reason: &str| TemplateError::Syntax {
            template: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(syntax("unmatched `}` (write `}}` for a literal brace)")),
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') => return Err(syntax("`{` inside a placeholder")),
                            Some(c) => inner.push(c),
                            None => return Err(syntax("unterminated placeholder")),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    let (name, fallback) = match inner.split_once(":-") {
                        Some((n, f)) => (n.trim(), Some(f.to_owned())),
                        None => (inner.trim(), None),
                    };
                    if let Some(var) = name.strip_prefix("var.") {
                        if var.is_empty() {
                            return Err(syntax("empty variable name"));
                        }
                        parts.push(Part::Var(var.to_owned()));
                    } else if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    {
                        return Err(syntax(&format!("`{name}` is not an attribute name")));
                    } else {
                        parts.push(Part::Attribute {
                            name: name.to_owned(),
                            fallback,
                        });
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// True when the template has no placeholder.
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Renders the template with attribute values from `lookup` and
    /// variables from `vars`.
    pub fn render_with<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<Cow<'a, str>>,
        vars: &[(String, String)],
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Attribute { name, fallback } => match (lookup(name), fallback) {
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(fallback)) => out.push_str(fallback),
                    (None, None) => {
                        return Err(TemplateError::MissingAttribute {
                            template: self.text.clone(),
                            name: name.clone(),
                        });
                    }
                },
                Part::Var(name) => match vars.iter().find(|(n, _)| n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        return Err(TemplateError::MissingVar {
                            template: self.text.clone(),
                            name: name.clone(),
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    /// Renders the template over `event`'s attributes.
    pub fn render(
        &self,
        event: &Event,
        vars: &[(String, String)],
    ) -> Result<String, TemplateError> {
        self.render_with(|name| event.attribute(name), vars)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttributeValue;

    #[test]
    fn kytos_exchange_and_routing_key() {
        let mut e = Event::new("1", "/kytos", "kytos/topology.link_up");
        e.set_extension("category", AttributeValue::String("operational".into()));
        let exchange = Template::parse("{var.prefix}.{category}").unwrap();
        let key = Template::parse("{category}.{type}").unwrap();
        let vars = vec![("prefix".to_owned(), "kytos".to_owned())];
        assert_eq!(exchange.render(&e, &vars).unwrap(), "kytos.operational");
        assert_eq!(
            key.render(&e, &vars).unwrap(),
            "operational.kytos/topology.link_up"
        );
    }

    #[test]
    fn fallbacks_braces_and_errors() {
        let e = Event::new("1", "/s", "t");
        let t = Template::parse("{{x}} {subject:-none}/{type}").unwrap();
        assert_eq!(t.render(&e, &[]).unwrap(), "{x} none/t");
        assert!(Template::parse("plain").unwrap().is_constant());
        assert!(matches!(
            Template::parse("{category}").unwrap().render(&e, &[]),
            Err(TemplateError::MissingAttribute { .. })
        ));
        assert!(matches!(
            Template::parse("{var.x}").unwrap().render(&e, &[]),
            Err(TemplateError::MissingVar { .. })
        ));
        for bad in ["{", "}", "{Bad}", "{}", "{a{b}}", "{var.}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}

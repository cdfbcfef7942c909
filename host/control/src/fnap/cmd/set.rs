//! `SET FLOW <flow> <setting>`: what the owner says about a flow: whether
//! anonymous sessions and other users may read it (PUBLIC, PRIVATE), and
//! how it describes itself (SCHEMA, RATE, RETENTION, TERMS, CONTACT;
//! docs/fnap.md 5.8). `-` removes a description setting.

use crate::fnap::command::{Args, ParseError};
use crate::names::DnsName;
use crate::store::{Schema, Visibility};

pub const USAGE: &str = "SET FLOW <flow> PUBLIC|PRIVATE|SCHEMA <uri|json>|RATE <n>/<s|min|h|d>|RETENTION <n><s|min|h|d>|TERMS <text>|CONTACT <uri|address> (- removes)";

/// The longest schema URI, terms text and contact, in octets.
pub const MAX_URI_LENGTH: usize = 1024;
pub const MAX_TERMS_LENGTH: usize = 512;
pub const MAX_CONTACT_LENGTH: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub flow: DnsName,
    pub setting: Setting,
}

/// One setting; `None` removes a description setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Visibility(Visibility),
    Schema(Option<Schema>),
    Rate(Option<String>),
    Retention(Option<String>),
    Terms(Option<String>),
    Contact(Option<String>),
}

impl Setting {
    /// The key the setting has in DESCRIBE FLOW (`visibility`, `rate`...).
    pub fn key(&self) -> &'static str {
        match self {
            Setting::Visibility(_) => "visibility",
            Setting::Schema(_) => "schema",
            Setting::Rate(_) => "rate",
            Setting::Retention(_) => "retention",
            Setting::Terms(_) => "terms",
            Setting::Contact(_) => "contact",
        }
    }
}

pub(crate) fn parse(args: Args<'_>) -> Result<Set, ParseError> {
    let mut args = args.usage(USAGE);
    if args.keyword("FLOW")? != "FLOW" {
        return Err(args.error("only flows have settings"));
    }
    let flow = args.name("flow name")?;
    let keyword = args.keyword("a setting")?;
    let setting = match keyword.as_str() {
        "PUBLIC" => Setting::Visibility(Visibility::Public),
        "PRIVATE" => Setting::Visibility(Visibility::Private),
        "SCHEMA" => Setting::Schema(value(&mut args, "schema", schema)?),
        "RATE" => Setting::Rate(value(&mut args, "rate", rate)?),
        "RETENTION" => Setting::Retention(value(&mut args, "retention", retention)?),
        "TERMS" => Setting::Terms(value(&mut args, "terms", terms)?),
        "CONTACT" => Setting::Contact(value(&mut args, "contact", contact)?),
        other => {
            return Err(args.error(format!(
                "expected PUBLIC, PRIVATE, SCHEMA, RATE, RETENTION, TERMS or CONTACT, got `{}`",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    if matches!(setting, Setting::Visibility(_)) {
        args.end()?;
    }
    Ok(Set { flow, setting })
}

/// The rest of the line as the value of `what`: `-` is `None`, anything
/// else goes through `check`.
fn value<T>(
    args: &mut Args<'_>,
    what: &str,
    check: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ParseError> {
    let rest = args.rest();
    if rest.is_empty() {
        return Err(args.error(format!("missing {what} (or - to remove it)")));
    }
    if rest == "-" {
        return Ok(None);
    }
    check(rest).map(Some).map_err(|problem| args.error(problem))
}

/// A URI (the CloudEvents `dataschema`) or an inline JSON Schema object.
fn schema(text: &str) -> Result<Schema, String> {
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| format!("the schema is not valid JSON: {error}"))?;
        let serde_json::Value::Object(object) = &value else {
            return Err("an inline JSON Schema must be an object".into());
        };
        if object.get("$schema").is_some_and(|s| !s.is_string()) {
            return Err("`$schema` of a JSON Schema must be a string".into());
        }
        return Ok(Schema::Inline(value.to_string()));
    }
    uri(text).map(Schema::Uri)
}

/// An absolute URI without spaces: `scheme ":" rest` (RFC 3986).
fn uri(text: &str) -> Result<String, String> {
    let valid_scheme = |scheme: &str| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    let graphic = text.chars().all(|c| c.is_ascii_graphic());
    match text.split_once(':') {
        Some((scheme, rest))
            if valid_scheme(scheme)
                && !rest.is_empty()
                && graphic
                && text.len() <= MAX_URI_LENGTH =>
        {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "expected an absolute URI without spaces of at most {MAX_URI_LENGTH} octets (https://...) or a JSON object"
        )),
    }
}

/// `<number>` and a unit: 1 to 12 digits with an optional fraction.
fn number_then(text: &str, units: &[&str]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let unit = units.iter().find(|unit| lower.ends_with(*unit))?;
    let number = lower.strip_suffix(unit)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    (digits(whole) && digits(fraction) && number.len() <= 12).then_some(lower)
}

/// `10/s`, `2.5/min`, `100/h`, `1/d`.
fn rate(text: &str) -> Result<String, String> {
    number_then(text, &["/s", "/min", "/h", "/d"])
        .ok_or_else(|| "expected a rate such as 10/s, 2.5/min, 100/h or 1/d".to_owned())
}

/// `30s`, `15min`, `24h`, `7d` or `forever`.
fn retention(text: &str) -> Result<String, String> {
    if text.eq_ignore_ascii_case("forever") {
        return Ok("forever".into());
    }
    number_then(text, &["min", "s", "h", "d"])
        .ok_or_else(|| "expected a retention such as 30s, 15min, 24h, 7d or forever".to_owned())
}

/// Free text, at most [`MAX_TERMS_LENGTH`] octets.
fn terms(text: &str) -> Result<String, String> {
    if text.len() > MAX_TERMS_LENGTH {
        return Err(format!(
            "terms of use are at most {MAX_TERMS_LENGTH} octets; link longer ones (https://...)"
        ));
    }
    Ok(text.to_owned())
}

/// A `mailto:`, `https:` or `http:` URI, or an e-mail address.
fn contact(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let is_uri = ["mailto:", "https://", "http://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len());
    let is_address = text
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.contains('@'));
    if text.len() <= MAX_CONTACT_LENGTH
        && text.chars().all(|c| c.is_ascii_graphic())
        && (is_uri || is_address)
    {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "expected a mailto:, https: or http: URI or an e-mail address of at most {MAX_CONTACT_LENGTH} octets, without spaces"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fnap::{Command, Line, LineReader, ParseError};

    /// Bytes as a client sends them, through the line reader, then parsed.
    fn parse_bytes(bytes: &[u8]) -> Result<Set, String> {
        let mut reader = LineReader::new(4096);
        reader.push(bytes);
        match reader.next_line() {
            Some(Line::Text(text)) => match Command::parse(&text) {
                Ok(Command::Set(set)) => Ok(set),
                Ok(other) => Err(format!("not SET: {other:?}")),
                Err(error) => Err(error.to_string()),
            },
            other => Err(format!("{other:?}")),
        }
    }

    fn setting(bytes: &[u8]) -> Setting {
        parse_bytes(bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(bytes)))
            .setting
    }

    fn refused(bytes: &[u8]) -> String {
        match parse_bytes(bytes) {
            Ok(set) => panic!("{} parsed as {set:?}", String::from_utf8_lossy(bytes)),
            Err(error) => error,
        }
    }

    #[test]
    fn visibility_as_before() {
        assert_eq!(
            setting(b"SET FLOW time.flows.unix.ar PUBLIC\r\n"),
            Setting::Visibility(Visibility::Public)
        );
        assert_eq!(
            setting(b"set flow Time.Flows.Unix.AR private\n"),
            Setting::Visibility(Visibility::Private)
        );
        assert!(refused(b"SET FLOW time.flows.unix.ar PUBLIC now\r\n").contains("unexpected"));
    }

    #[test]
    fn schemas_by_uri_or_inline() {
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar SCHEMA https://unix.ar/schemas/time.json\r\n"),
            Setting::Schema(Some(Schema::Uri(
                "https://unix.ar/schemas/time.json".into()
            )))
        );
        // Spaces and tabs inside the JSON are kept out of the stored form.
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar SCHEMA {\"type\":\t\"object\", \"required\": [\"time\"]}  \r\n"),
            Setting::Schema(Some(Schema::Inline(
                r#"{"required":["time"],"type":"object"}"#.into()
            )))
        );
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar schema -\r\n"),
            Setting::Schema(None)
        );
        assert!(refused(b"SET FLOW t.flows.unix.ar SCHEMA [1,2]\r\n").contains("object"));
        assert!(refused(b"SET FLOW t.flows.unix.ar SCHEMA {\"a\":\r\n").contains("JSON"));
        assert!(
            refused(b"SET FLOW t.flows.unix.ar SCHEMA {\"$schema\":1}\r\n").contains("$schema")
        );
        assert!(refused(b"SET FLOW t.flows.unix.ar SCHEMA time.json\r\n").contains("URI"));
        assert!(refused(b"SET FLOW t.flows.unix.ar SCHEMA https://a b\r\n").contains("URI"));
        assert!(refused(b"SET FLOW t.flows.unix.ar SCHEMA\r\n").contains("missing schema"));
        let long = format!(
            "SET FLOW t.flows.unix.ar SCHEMA https://{}\r\n",
            "a".repeat(1100)
        );
        assert!(refused(long.as_bytes()).contains("1024"));
    }

    #[test]
    fn rates_and_retentions() {
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar RATE 10/S\r\n"),
            Setting::Rate(Some("10/s".into()))
        );
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar RATE 2.5/min\r\n"),
            Setting::Rate(Some("2.5/min".into()))
        );
        for bad in [
            &b"10"[..],
            b"/s",
            b"1e3/s",
            b"-1/s",
            b"10/week",
            b"1./s",
            b"1234567890123/s",
        ] {
            let line = [&b"SET FLOW t.flows.unix.ar RATE "[..], bad, b"\r\n"].concat();
            assert!(refused(&line).contains("rate such as"), "{bad:?}");
        }
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar RETENTION 7d\r\n"),
            Setting::Retention(Some("7d".into()))
        );
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar RETENTION 15MIN\r\n"),
            Setting::Retention(Some("15min".into()))
        );
        assert_eq!(
            setting(b"SET FLOW t.flows.unix.ar RETENTION Forever\r\n"),
            Setting::Retention(Some("forever".into()))
        );
        assert!(refused(b"SET FLOW t.flows.unix.ar RETENTION 7 days\r\n").contains("retention"));
    }

    #[test]
    fn terms_and_contacts() {
        assert_eq!(
            setting("SET FLOW t.flows.unix.ar TERMS CC-BY 4.0, café included\r\n".as_bytes()),
            Setting::Terms(Some("CC-BY 4.0, café included".into()))
        );
        let long = format!("SET FLOW t.flows.unix.ar TERMS {}\r\n", "x".repeat(513));
        assert!(refused(long.as_bytes()).contains("512"));
        for good in [
            "mailto:ops@unix.ar",
            "https://unix.ar/contact",
            "ops@unix.ar",
        ] {
            assert_eq!(
                setting(format!("SET FLOW t.flows.unix.ar CONTACT {good}\r\n").as_bytes()),
                Setting::Contact(Some(good.into()))
            );
        }
        for bad in [
            "ops",
            "ops at unix.ar",
            "ftp://unix.ar",
            "a@b@c.d",
            "mailto:",
        ] {
            let line = format!("SET FLOW t.flows.unix.ar CONTACT {bad}\r\n");
            assert!(refused(line.as_bytes()).contains("e-mail"), "{bad}");
        }
    }

    #[test]
    fn bytes_that_are_not_text_never_reach_the_parser() {
        let mut reader = LineReader::new(64);
        reader.push(b"SET FLOW t.flows.unix.ar TERMS \xff\xfe\r\n");
        assert_eq!(reader.next_line(), Some(Line::Invalid));
        reader.push(b"SET FLOW t.flows.unix.ar TERMS a\x07b\r\n");
        assert_eq!(reader.next_line(), Some(Line::Invalid));
        reader.push(format!("SET FLOW t.flows.unix.ar TERMS {}\r\n", "x".repeat(64)).as_bytes());
        assert_eq!(reader.next_line(), Some(Line::TooLong));
        assert!(matches!(
            Command::parse("SET FLOW t.flows.unix.ar COLOUR red"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(
            Command::parse("SET FLOW t_x.flows.unix.ar RATE 1/s"),
            Err(ParseError::InvalidName { .. })
        ));
    }
}

//! NATS protocol binding (version 1.0.3-wip of the CloudEvents binding,
//! the first with binary mode; it needs NATS 2.2+ message headers).
//!
//! Binary mode: every attribute, `datacontenttype` included, is a
//! `ce-<name>` header whose value is the attribute's canonical string,
//! percent-encoded (space, `"`, `%` and everything outside printable ASCII
//! become `%XY` of their UTF-8 bytes); `data` is the payload; the message
//! has no `Content-Type`. Structured mode: the payload is the CloudEvents
//! JSON document and the `Content-Type` header (the message's
//! [`content_type`](super::Message::content_type)) is
//! `application/cloudevents+json`.
//!
//! Decoding follows the binding's rule: a `Content-Type` of
//! `application/cloudevents...` (any case) means structured, anything else
//! binary. Header names are matched case-insensitively; values are first
//! unquoted (RFC 7230 quoted strings, which older producers sent) and then
//! percent-decoded once, refusing what is not UTF-8. A binary message
//! without `ce-datacontenttype` but with a `Content-Type` takes that as its
//! data content type.

use super::{BindingError, Message, Mode, check_batch, event_from_attributes, header_attributes};
use crate::Event;

/// Header prefix of binary mode.
pub const PREFIX: &str = "ce-";

/// Encodes `event` in `mode`.
pub fn encode(event: &Event, mode: Mode) -> Message {
    match mode {
        Mode::Structured => super::encode_structured(event),
        Mode::Binary => {
            let mut headers: Vec<(String, Vec<u8>)> = header_attributes(event)
                .into_iter()
                .map(|(name, value)| (format!("{PREFIX}{name}"), percent_encode(&value)))
                .collect();
            if let Some(ct) = &event.data_content_type {
                // After the required attributes, before the optional ones,
                // as the binding's example lists them.
                let at = headers.len().min(4);
                headers.insert(at, (format!("{PREFIX}datacontenttype"), percent_encode(ct)));
            }
            Message {
                content_type: None,
                headers,
                payload: event.data.clone().unwrap_or_default(),
                ..Message::default()
            }
        }
    }
}

/// Decodes a message in either mode.
pub fn decode(message: &Message) -> Result<Event, BindingError> {
    check_batch(message.content_type.as_deref())?;
    if message
        .content_type
        .as_deref()
        .is_some_and(super::is_structured_content_type)
    {
        return super::decode_structured(&message.payload);
    }
    let mut attributes = Vec::with_capacity(message.headers.len());
    for (name, value) in &message.headers {
        let Some(attr) = strip_prefix(name) else {
            continue;
        };
        let value = header_value(name, value)?;
        attributes.push((attr.to_ascii_lowercase(), value));
    }
    if !attributes.iter().any(|(n, _)| n == "specversion") {
        return Err(BindingError::NotACloudEvent(format!("{PREFIX}specversion")));
    }
    let content_type = if attributes.iter().any(|(n, _)| n == "datacontenttype") {
        None
    } else {
        message.content_type.as_deref()
    };
    event_from_attributes(attributes, content_type, &message.payload)
}

/// The attribute name of a `ce-` header (prefix in any case).
fn strip_prefix(name: &str) -> Option<&str> {
    let head = name.get(..PREFIX.len())?;
    head.eq_ignore_ascii_case(PREFIX)
        .then(|| &name[PREFIX.len()..])
}

/// Percent-encodes a header value as the binding prescribes: space, `"`,
/// `%` and every byte outside U+0021..U+007E, upper-case hex.
pub fn percent_encode(value: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(value.len());
    for &b in value.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b);
        } else {
            out.extend([b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    out
}

/// Decodes one header value: RFC 7230 quoted-string unescaping, then one
/// round of percent-decoding; the result must be UTF-8.
fn header_value(name: &str, raw: &[u8]) -> Result<String, BindingError> {
    let not_utf8 = || BindingError::NotUtf8 {
        name: name.to_owned(),
    };
    let unquoted = unquote(raw);
    let mut bytes = Vec::with_capacity(unquoted.len());
    let mut i = 0;
    while i < unquoted.len() {
        match unquoted[i] {
            b'%' => {
                let hex = unquoted
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or_else(not_utf8)?;
                let text = std::str::from_utf8(hex).map_err(|_| not_utf8())?;
                bytes.push(u8::from_str_radix(text, 16).map_err(|_| not_utf8())?);
                i += 3;
            }
            b => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| not_utf8())
}

/// Removes the double quotes and backslash escapes of quoted strings
/// (`"a b"` -> `a b`, `"say \"hi\""` -> `say "hi"`); anything outside
/// quotes stays as it is.
fn unquote(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'"') {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut quoted = false;
    let mut iter = raw.iter().copied();
    while let Some(b) = iter.next() {
        match (quoted, b) {
            (_, b'"') => quoted = !quoted,
            (true, b'\\') => {
                if let Some(next) = iter.next() {
                    out.push(next);
                }
            }
            (_, b) => out.push(b),
        }
    }
    out
}

/// The NATS binding for [`Codec`](super::Codec): no keys of its own.
#[derive(Debug, Clone, Copy)]
pub struct Wire;

impl super::Wire for Wire {
    fn encode(&self, event: &Event, mode: Mode) -> Message {
        encode(event, mode)
    }

    fn decode(&self, message: &Message) -> Result<Event, BindingError> {
        decode(message)
    }

    fn clone_box(&self) -> Box<dyn super::Wire> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttributeValue;
    use crate::binding::tests::sample;

    fn text(headers: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    #[test]
    fn binary_headers_byte_by_byte() {
        let e = sample();
        let m = encode(&e, Mode::Binary);
        let want: Vec<(String, String)> = [
            ("ce-specversion", "1.0"),
            ("ce-id", "ev-1"),
            ("ce-source", "/kytos/topology"),
            ("ce-type", "kytos/topology.link_up"),
            ("ce-datacontenttype", "application/json"),
            ("ce-subject", "link/7"),
            ("ce-time", "2026-11-22T10:00:00.123Z"),
            ("ce-dataschema", "https://example.org/link.json"),
            ("ce-category", "operational"),
            ("ce-partitionkey", "link-7"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(text(&m.headers), want);
        assert_eq!(m.content_type, None);
        assert_eq!(m.key, None);
        assert_eq!(m.payload, br#"{"link":"7","status":"up"}"#.to_vec());
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn structured_payload_byte_by_byte() {
        let e = Event::new("1", "/s", "t").with_data("text/plain", b"hi".to_vec());
        let m = encode(&e, Mode::Structured);
        assert_eq!(
            m.content_type.as_deref(),
            Some("application/cloudevents+json; charset=UTF-8")
        );
        assert!(m.headers.is_empty());
        assert_eq!(
            String::from_utf8(m.payload.clone()).unwrap(),
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi"}"#
        );
        assert_eq!(decode(&m).unwrap(), e);
        let mut typed = sample();
        typed.set_extension("hops", AttributeValue::Integer(3));
        assert_eq!(decode(&encode(&typed, Mode::Structured)).unwrap(), typed);
    }

    #[test]
    fn percent_encoding_as_the_binding_shows() {
        assert_eq!(
            percent_encode("Euro \u{20AC} \u{1F600}"),
            b"Euro%20%E2%82%AC%20%F0%9F%98%80".to_vec()
        );
        assert_eq!(
            percent_encode("100% \"sure\""),
            b"100%25%20%22sure%22".to_vec()
        );
        let mut e = Event::new("id 1", "/s", "t");
        e.subject = Some("caf\u{e9} 50%".into());
        let m = encode(&e, Mode::Binary);
        assert_eq!(m.header("ce-id"), Some(&b"id%201"[..]));
        assert_eq!(m.header("ce-subject"), Some(&b"caf%C3%A9%2050%25"[..]));
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn decoding_is_lenient_as_the_binding_requires() {
        let m = Message {
            headers: vec![
                ("CE-SpecVersion".into(), b"1.0".to_vec()),
                ("ce-id".into(), b"\"quoted id\"".to_vec()),
                ("ce-source".into(), b"%2fs%2F".to_vec()),
                ("ce-type".into(), b"\"say \\\"hi\\\"\"".to_vec()),
                ("Nats-Msg-Id".into(), b"x".to_vec()),
            ],
            content_type: Some("text/plain".into()),
            payload: b"hi".to_vec(),
            ..Message::default()
        };
        let e = decode(&m).unwrap();
        assert_eq!(e.id, "quoted id");
        assert_eq!(e.source, "/s/");
        assert_eq!(e.ty, "say \"hi\"");
        assert_eq!(e.data_content_type.as_deref(), Some("text/plain"));
        assert_eq!(e.data.as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn refuses_bad_values_plain_messages_and_batches() {
        let mut overlong = encode(&sample(), Mode::Binary);
        overlong.headers[1].1 = b"%C0%A0".to_vec();
        assert_eq!(
            decode(&overlong),
            Err(BindingError::NotUtf8 {
                name: "ce-id".into()
            })
        );
        let mut truncated = encode(&sample(), Mode::Binary);
        truncated.headers[1].1 = b"ab%4".to_vec();
        assert!(matches!(
            decode(&truncated),
            Err(BindingError::NotUtf8 { .. })
        ));
        let plain = Message {
            payload: b"hello".to_vec(),
            ..Message::default()
        };
        assert_eq!(
            decode(&plain),
            Err(BindingError::NotACloudEvent("ce-specversion".into()))
        );
        let batch = Message {
            content_type: Some("application/cloudevents-batch+json".into()),
            payload: b"[]".to_vec(),
            ..Message::default()
        };
        assert!(matches!(decode(&batch), Err(BindingError::Batch(_))));
        let mut missing = encode(&sample(), Mode::Binary);
        missing.headers.retain(|(n, _)| n != "ce-source");
        assert_eq!(decode(&missing), Err(BindingError::Missing("source")));
    }

    #[test]
    fn binary_without_data() {
        let e = Event::new("1", "/s", "t");
        let m = encode(&e, Mode::Binary);
        assert!(m.payload.is_empty());
        assert_eq!(m.header("ce-datacontenttype"), None);
        assert_eq!(decode(&m).unwrap().data, None);
    }
}

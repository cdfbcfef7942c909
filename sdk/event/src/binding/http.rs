//! HTTP protocol binding 1.0, receiving side: what a CloudEvents producer
//! POSTs (the host's ingestion listener decodes requests with it).
//!
//! * Binary mode: attributes are `ce-<name>` headers (percent-encoded, the
//!   same rules as the NATS binding), `Content-Type` is `datacontenttype`,
//!   the body is `data`.
//! * Structured mode: `Content-Type: application/cloudevents+json`, the
//!   body is one event in the JSON format.
//! * Batched mode: `Content-Type: application/cloudevents-batch+json`, the
//!   body is a JSON array of events (possibly empty).

use serde_json::value::RawValue;

use super::{BindingError, Message};
use crate::{Event, FormatError};

/// Why a request carries no valid events. Each names the problem, for the
/// `400` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpBindingError {
    #[error("the batch is not a JSON array of events: {0}")]
    NotAnArray(String),
    #[error("event {index} of the batch: {error}")]
    InBatch { index: usize, error: FormatError },
    #[error("{0}")]
    Event(#[from] BindingError),
}

/// True for `application/cloudevents-batch+json` (parameters and case
/// ignored).
pub fn is_batch_content_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/cloudevents-batch+json")
}

/// Decodes the events of one request: its `Content-Type`, its headers
/// (name, raw value) and its body.
pub fn decode_request(
    content_type: Option<&str>,
    headers: Vec<(String, Vec<u8>)>,
    body: &[u8],
) -> Result<Vec<Event>, HttpBindingError> {
    if content_type.is_some_and(is_batch_content_type) {
        let members: Vec<&RawValue> = serde_json::from_slice(body)
            .map_err(|e| HttpBindingError::NotAnArray(e.to_string()))?;
        return members
            .into_iter()
            .enumerate()
            .map(|(index, raw)| {
                crate::from_json(raw.get().as_bytes())
                    .map_err(|error| HttpBindingError::InBatch { index, error })
            })
            .collect();
    }
    let message = Message {
        content_type: content_type.map(str::to_owned),
        headers,
        payload: body.to_vec(),
        ..Message::default()
    };
    Ok(vec![super::nats::decode(&message)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_headers() -> Vec<(String, Vec<u8>)> {
        vec![
            ("CE-SpecVersion".into(), b"1.0".to_vec()),
            ("ce-id".into(), b"e1".to_vec()),
            ("ce-source".into(), b"/kytos".to_vec()),
            ("ce-type".into(), b"kytos/topology.link_up".to_vec()),
            ("ce-subject".into(), b"link%20one".to_vec()),
            ("user-agent".into(), b"curl".to_vec()),
        ]
    }

    #[test]
    fn binary_mode_takes_attributes_from_headers() {
        let events = decode_request(
            Some("application/json"),
            binary_headers(),
            br#"{"status":"up"}"#,
        )
        .expect("valid");
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.id, "e1");
        assert_eq!(e.subject.as_deref(), Some("link one"));
        assert_eq!(e.data_content_type.as_deref(), Some("application/json"));
        assert_eq!(e.data.as_deref(), Some(&br#"{"status":"up"}"#[..]));
    }

    #[test]
    fn binary_mode_without_specversion_is_refused() {
        let mut headers = binary_headers();
        headers.remove(0);
        let error = decode_request(Some("application/json"), headers, b"{}").unwrap_err();
        assert!(error.to_string().contains("ce-specversion"), "{error}");
    }

    #[test]
    fn structured_mode_reads_the_body() {
        let body = br#"{"specversion":"1.0","id":"s1","source":"/x","type":"t","data":{"a":1}}"#;
        let events =
            decode_request(Some("application/cloudevents+json"), Vec::new(), body).expect("valid");
        assert_eq!(events[0].id, "s1");
        assert_eq!(events[0].data.as_deref(), Some(&br#"{"a":1}"#[..]));
    }

    #[test]
    fn a_batch_is_every_event_in_order() {
        let body = br#"[{"specversion":"1.0","id":"1","source":"/x","type":"t"},
                        {"specversion":"1.0","id":"2","source":"/x","type":"t"}]"#;
        let events = decode_request(
            Some("Application/CloudEvents-Batch+JSON; charset=utf-8"),
            Vec::new(),
            body,
        )
        .expect("valid");
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        let empty = decode_request(
            Some("application/cloudevents-batch+json"),
            Vec::new(),
            b"[]",
        )
        .expect("valid");
        assert!(empty.is_empty());
    }

    #[test]
    fn a_bad_member_names_its_index_and_refuses_the_whole_batch() {
        let body = br#"[{"specversion":"1.0","id":"1","source":"/x","type":"t"},
                        {"specversion":"1.0","id":"2","source":"/x"}]"#;
        let error = decode_request(Some("application/cloudevents-batch+json"), Vec::new(), body)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "event 1 of the batch: required attribute `type` is missing"
        );
        let error = decode_request(
            Some("application/cloudevents-batch+json"),
            Vec::new(),
            b"{}",
        )
        .unwrap_err();
        assert!(matches!(error, HttpBindingError::NotAnArray(_)), "{error}");
    }
}

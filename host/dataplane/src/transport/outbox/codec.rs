//! How a message is laid out in the outbox file: a version byte, the
//! timestamp, then each field length-prefixed (`u32` little endian;
//! `u32::MAX` for an absent optional field). Versioned so that a newer
//! host reads an older file.

use crate::transport::{Destination, Message};

const VERSION: u8 = 1;
const ABSENT: u32 = u32::MAX;

/// Why stored bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown layout version {0}")]
    Version(u8),
    #[error("truncated record")]
    Truncated,
    #[error("a text field is not UTF-8")]
    Utf8,
}

pub fn encode(timestamp_ms: i64, message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.payload.len());
    out.push(VERSION);
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    put(&mut out, Some(message.destination.name.as_bytes()));
    put(
        &mut out,
        message
            .destination
            .routing_key
            .as_deref()
            .map(str::as_bytes),
    );
    put(&mut out, message.key.as_deref());
    put(&mut out, message.content_type.as_deref().map(str::as_bytes));
    out.extend_from_slice(&(message.headers.len() as u32).to_le_bytes());
    for (name, value) in &message.headers {
        put(&mut out, Some(name.as_bytes()));
        put(&mut out, Some(value));
    }
    put(&mut out, Some(&message.payload));
    out
}

fn put(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&ABSENT.to_le_bytes()),
    }
}

pub fn decode(bytes: &[u8]) -> Result<(i64, Message), DecodeError> {
    let mut r = Reader(bytes);
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let timestamp = i64::from_le_bytes(r.array()?);
    let name = r.text()?.unwrap_or_default();
    let routing_key = r.text()?;
    let key = r.field()?.map(<[u8]>::to_vec);
    let content_type = r.text()?;
    let count = u32::from_le_bytes(r.array()?);
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = r.text()?.ok_or(DecodeError::Truncated)?;
        let value = r.field()?.ok_or(DecodeError::Truncated)?.to_vec();
        headers.push((name, value));
    }
    let payload = r.field()?.unwrap_or_default().to_vec();
    Ok((
        timestamp,
        Message {
            destination: Destination { name, routing_key },
            key,
            content_type,
            headers,
            payload,
        },
    ))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?.try_into().map_err(|_| DecodeError::Truncated)
    }

    fn field(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = u32::from_le_bytes(self.array()?);
        if len == ABSENT {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }

    fn text(&mut self) -> Result<Option<String>, DecodeError> {
        self.field()?
            .map(|b| String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Utf8))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Message {
        Message {
            destination: Destination {
                name: "admin_events".into(),
                routing_key: Some("administrative.kytos/topology.switch.enabled".into()),
            },
            key: Some(vec![0, 1, 255]),
            content_type: Some("application/cloudevents+json".into()),
            headers: vec![
                ("ce-id".into(), b"1".to_vec()),
                ("empty".into(), Vec::new()),
            ],
            payload: b"{\"a\":1}".to_vec(),
        }
    }

    #[test]
    fn every_field_survives() {
        for message in [full(), Message::default()] {
            assert_eq!(decode(&encode(-5, &message)), Ok((-5, message)));
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(7, &full());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "{n} bytes decoded");
        }
    }

    #[test]
    fn an_unknown_version_is_named() {
        let mut bytes = encode(0, &full());
        bytes[0] = 9;
        assert_eq!(decode(&bytes), Err(DecodeError::Version(9)));
    }
}

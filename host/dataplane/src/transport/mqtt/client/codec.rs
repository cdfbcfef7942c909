//! Packets to and from bytes, per protocol version.
//!
//! What the broker sends is framed first ([`packet::complete_frame`]), then
//! decoded by rumqttc on exactly that frame, and turned into one
//! version-free [`Inbound`]. PUBLISH is encoded by hand, straight into the
//! write buffer (rumqttc would want an owned `Publish` per message);
//! SUBSCRIBE, rare, by rumqttc.

use rumqttc::mqttbytes::v4 as p4;
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio_util::bytes::{BufMut, BytesMut};

use super::packet::{
    self, MAX_PACKET, MAX_REMAINING_LENGTH, first_byte, property, put_str, put_varint, varint_len,
};
use super::{ConnectionError, Incoming, InvalidPublish, MqttVersion, Qos};

/// What the CONNACK told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Accepted {
    pub session_present: bool,
    pub receive_max: Option<u16>,
    pub max_packet_size: Option<u32>,
    pub server_keep_alive: Option<u16>,
}

/// A packet from the broker, whatever the version.
#[derive(Debug)]
pub(super) enum Inbound {
    /// `Err` is [`ConnectionError::Refused`] with the broker's code.
    ConnAck(Result<Accepted, ConnectionError>),
    Publish(Incoming),
    /// `error` when the broker refused the message (MQTT 5 reason code).
    PubAck {
        pkid: u16,
        error: Option<String>,
    },
    PubRec {
        pkid: u16,
        error: Option<String>,
    },
    PubRel {
        pkid: u16,
    },
    PubComp {
        pkid: u16,
    },
    SubAck {
        pkid: u16,
        /// Filters the broker refused.
        refused: usize,
    },
    PingResp,
    /// The reason code of the broker's DISCONNECT, when it gave one.
    Disconnect(Option<String>),
    /// Well-formed, but nothing a client acts on (UNSUBACK, or packets only
    /// a server is sent), by name.
    Ignored(&'static str),
}

impl Inbound {
    /// The packet's name, for messages (its Debug form can hold a whole
    /// payload).
    pub fn name(&self) -> &'static str {
        match self {
            Inbound::ConnAck(_) => "CONNACK",
            Inbound::Publish(_) => "PUBLISH",
            Inbound::PubAck { .. } => "PUBACK",
            Inbound::PubRec { .. } => "PUBREC",
            Inbound::PubRel { .. } => "PUBREL",
            Inbound::PubComp { .. } => "PUBCOMP",
            Inbound::SubAck { .. } => "SUBACK",
            Inbound::PingResp => "PINGRESP",
            Inbound::Disconnect(_) => "DISCONNECT",
            Inbound::Ignored(name) => name,
        }
    }
}

/// Decodes the packet at the start of `buf`, if complete, and removes it.
/// An error means the stream cannot be trusted any more.
pub(super) fn decode(
    version: MqttVersion,
    buf: &mut BytesMut,
) -> Result<Option<Inbound>, ConnectionError> {
    let header = match packet::complete_frame(buf, MAX_PACKET as usize) {
        Ok(Some(header)) => header,
        Ok(None) => return Ok(None),
        Err(e) => return Err(ConnectionError::Frame(e)),
    };
    // rumqttc sees this one frame only: whatever it thinks of the lengths
    // inside, it cannot read into the next packet, and "insufficient bytes"
    // from it means malformed (the frame is all there is).
    let mut frame = buf.split_to(header.frame_len());
    let malformed = |e: String| ConnectionError::Malformed {
        packet: packet::packet_name(header.packet_type()),
        reason: e,
    };
    match version {
        MqttVersion::V311 => p4::Packet::read(&mut frame, MAX_PACKET as usize)
            .map(inbound4)
            .map_err(|e| malformed(e.to_string())),
        MqttVersion::V5 => {
            if header.byte1 == first_byte::DISCONNECT && header.remaining_len == 0 {
                // MQTT 5 allows a bare DISCONNECT for "normal disconnection";
                // rumqttc wants a reason code.
                return Ok(Some(disconnected5(
                    p5::DisconnectReasonCode::NormalDisconnection,
                )));
            }
            p5::Packet::read(&mut frame, Some(MAX_PACKET))
                .map(inbound5)
                .map_err(|e| malformed(e.to_string()))
        }
    }
    .map(Some)
}

fn disconnected5(reason: p5::DisconnectReasonCode) -> Inbound {
    Inbound::Disconnect(Some(format!("{reason:?}")))
}

fn inbound4(packet: p4::Packet) -> Inbound {
    match packet {
        p4::Packet::ConnAck(c) if c.code == p4::ConnectReturnCode::Success => {
            Inbound::ConnAck(Ok(Accepted {
                session_present: c.session_present,
                receive_max: None,
                max_packet_size: None,
                server_keep_alive: None,
            }))
        }
        p4::Packet::ConnAck(c) => {
            Inbound::ConnAck(Err(ConnectionError::Refused(format!("{:?}", c.code))))
        }
        p4::Packet::Publish(p) => Inbound::Publish(Incoming {
            topic: p.topic,
            payload: p.payload.to_vec(),
            qos: p.qos as u8,
            pkid: p.pkid,
            content_type: None,
            user_properties: Vec::new(),
        }),
        p4::Packet::PubAck(a) => Inbound::PubAck {
            pkid: a.pkid,
            error: None,
        },
        p4::Packet::PubRec(r) => Inbound::PubRec {
            pkid: r.pkid,
            error: None,
        },
        p4::Packet::PubRel(r) => Inbound::PubRel { pkid: r.pkid },
        p4::Packet::PubComp(c) => Inbound::PubComp { pkid: c.pkid },
        p4::Packet::SubAck(s) => Inbound::SubAck {
            pkid: s.pkid,
            refused: s
                .return_codes
                .iter()
                .filter(|c| matches!(c, p4::SubscribeReasonCode::Failure))
                .count(),
        },
        p4::Packet::PingResp => Inbound::PingResp,
        p4::Packet::Disconnect => Inbound::Disconnect(None),
        p4::Packet::UnsubAck(_) => Inbound::Ignored("UNSUBACK"),
        p4::Packet::Connect(_) => Inbound::Ignored("CONNECT"),
        p4::Packet::Subscribe(_) => Inbound::Ignored("SUBSCRIBE"),
        p4::Packet::Unsubscribe(_) => Inbound::Ignored("UNSUBSCRIBE"),
        p4::Packet::PingReq => Inbound::Ignored("PINGREQ"),
    }
}

fn inbound5(packet: p5::Packet) -> Inbound {
    match packet {
        p5::Packet::ConnAck(c) if c.code == p5::ConnectReturnCode::Success => {
            let props = c.properties.as_ref();
            Inbound::ConnAck(Ok(Accepted {
                session_present: c.session_present,
                receive_max: props.and_then(|p| p.receive_max),
                // 0 is a protocol error: we would refuse every message.
                max_packet_size: props.and_then(|p| p.max_packet_size).filter(|&n| n > 0),
                server_keep_alive: props.and_then(|p| p.server_keep_alive),
            }))
        }
        p5::Packet::ConnAck(c) => {
            Inbound::ConnAck(Err(ConnectionError::Refused(format!("{:?}", c.code))))
        }
        p5::Packet::Publish(p) => {
            let (content_type, user_properties) = match p.properties {
                Some(props) => (props.content_type, props.user_properties),
                None => (None, Vec::new()),
            };
            let topic = match String::from_utf8(p.topic.to_vec()) {
                Ok(t) => t,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            Inbound::Publish(Incoming {
                topic,
                payload: p.payload.to_vec(),
                qos: p.qos as u8,
                pkid: p.pkid,
                content_type,
                user_properties,
            })
        }
        p5::Packet::PubAck(a) => Inbound::PubAck {
            pkid: a.pkid,
            error: match a.reason {
                p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers => None,
                other => Some(format!("broker refused the message: {other:?}")),
            },
        },
        p5::Packet::PubRec(r) => Inbound::PubRec {
            pkid: r.pkid,
            error: match r.reason {
                p5::PubRecReason::Success | p5::PubRecReason::NoMatchingSubscribers => None,
                other => Some(format!("broker refused the message: {other:?}")),
            },
        },
        p5::Packet::PubRel(r) => Inbound::PubRel { pkid: r.pkid },
        p5::Packet::PubComp(c) => Inbound::PubComp { pkid: c.pkid },
        p5::Packet::SubAck(s) => Inbound::SubAck {
            pkid: s.pkid,
            refused: s
                .return_codes
                .iter()
                .filter(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                .count(),
        },
        p5::Packet::PingResp(_) => Inbound::PingResp,
        p5::Packet::Disconnect(d) => disconnected5(d.reason_code),
        p5::Packet::UnsubAck(_) => Inbound::Ignored("UNSUBACK"),
        p5::Packet::Auth(_) => Inbound::Ignored("AUTH"),
        p5::Packet::Connect(..) => Inbound::Ignored("CONNECT"),
        p5::Packet::Subscribe(_) => Inbound::Ignored("SUBSCRIBE"),
        p5::Packet::Unsubscribe(_) => Inbound::Ignored("UNSUBSCRIBE"),
        p5::Packet::PingReq(_) => Inbound::Ignored("PINGREQ"),
    }
}

/// A PUBLISH to encode.
pub(super) struct OutgoingPublish<'a> {
    pub topic: &'a str,
    pub qos: Qos,
    pub retain: bool,
    pub payload: &'a [u8],
    /// MQTT 5 only; ignored on 3.1.1 (structured mode carries it).
    pub content_type: Option<&'a str>,
    /// MQTT 5 user properties.
    pub headers: &'a [(String, Vec<u8>)],
}

/// The lengths of an encoded PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PublishLayout {
    properties_len: usize,
    remaining: usize,
    /// The whole packet.
    pub size: usize,
}

/// A topic name we may publish to: non-empty, no wildcards, no NUL.
fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// Fits in a two-byte length prefix.
fn fits_u16(s: &[u8]) -> bool {
    s.len() <= usize::from(u16::MAX)
}

impl OutgoingPublish<'_> {
    /// Checks that the message can be sent on `version` and measures it.
    /// `Err` is why it never can (not the broker's size limit: the caller
    /// compares `size` with that).
    pub fn layout(&self, version: MqttVersion) -> Result<PublishLayout, InvalidPublish> {
        let topic = self.topic;
        if !valid_topic_name(topic) {
            return Err(InvalidPublish::TopicName(topic.to_owned()));
        }
        if !fits_u16(topic.as_bytes()) {
            return Err(InvalidPublish::TopicTooLong);
        }
        // Properties (MQTT 5): content type, then user properties.
        let mut properties_len = 0usize;
        match version {
            MqttVersion::V311 => {
                if !self.headers.is_empty() {
                    return Err(InvalidPublish::HeadersOnV311);
                }
            }
            MqttVersion::V5 => {
                if let Some(ct) = self.content_type {
                    // Before: a longer one had its length prefix wrapped,
                    // and the broker read garbage.
                    if !fits_u16(ct.as_bytes()) {
                        return Err(InvalidPublish::ContentTypeTooLong);
                    }
                    properties_len += 1 + 2 + ct.len();
                }
                for (name, value) in self.headers {
                    if std::str::from_utf8(value).is_err() {
                        return Err(InvalidPublish::HeaderNotUtf8(name.clone()));
                    }
                    if !fits_u16(name.as_bytes()) || !fits_u16(value) {
                        return Err(InvalidPublish::HeaderTooLong(name.clone()));
                    }
                    properties_len += 1 + 2 + name.len() + 2 + value.len();
                }
            }
        }
        let mut remaining = 2 + topic.len() + self.payload.len();
        if self.qos != Qos::AtMostOnce {
            remaining += 2;
        }
        if version == MqttVersion::V5 {
            remaining += varint_len(properties_len) + properties_len;
        }
        // Over the varint's range: saturate, so that no broker limit admits it.
        let size = if remaining > MAX_REMAINING_LENGTH {
            usize::MAX
        } else {
            1 + varint_len(remaining) + remaining
        };
        Ok(PublishLayout {
            properties_len,
            remaining,
            size,
        })
    }

    /// Appends the packet; `layout` is this message's, of size at most
    /// [`MAX_REMAINING_LENGTH`], and `pkid` is 0 for QoS 0.
    pub fn write(&self, version: MqttVersion, layout: &PublishLayout, pkid: u16, b: &mut BytesMut) {
        let level: u8 = match self.qos {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        };
        b.reserve(layout.size);
        b.put_u8(first_byte::PUBLISH | (level << 1) | u8::from(self.retain));
        put_varint(b, layout.remaining);
        put_str(b, self.topic.as_bytes());
        if level > 0 {
            b.put_u16(pkid);
        }
        if version == MqttVersion::V5 {
            put_varint(b, layout.properties_len);
            if let Some(ct) = self.content_type {
                b.put_u8(property::CONTENT_TYPE);
                put_str(b, ct.as_bytes());
            }
            for (name, value) in self.headers {
                b.put_u8(property::USER_PROPERTY);
                put_str(b, name.as_bytes());
                put_str(b, value);
            }
        }
        b.put_slice(self.payload);
    }
}

/// Appends a SUBSCRIBE for `filters`; nothing is appended on error.
pub(super) fn write_subscribe(
    version: MqttVersion,
    pkid: u16,
    filters: &[String],
    qos: Qos,
    max_packet: u32,
    buf: &mut BytesMut,
) -> Result<(), ConnectionError> {
    let encode = |e: String| ConnectionError::Encode {
        packet: "SUBSCRIBE",
        reason: e,
    };
    match version {
        MqttVersion::V311 => {
            let q = match qos {
                Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
                Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
                Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
            };
            let mut s = p4::Subscribe::new_many(
                filters
                    .iter()
                    .map(|f| p4::SubscribeFilter::new(f.clone(), q)),
            );
            s.pkid = pkid;
            p4::Packet::Subscribe(s)
                .write(buf, max_packet as usize)
                .map(|_| ())
                .map_err(|e| encode(e.to_string()))
        }
        MqttVersion::V5 => {
            let q = match qos {
                Qos::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                Qos::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                Qos::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
            };
            let mut s = p5::Subscribe::new_many(
                filters.iter().map(|f| p5::Filter::new(f.clone(), q)),
                None,
            );
            s.pkid = pkid;
            p5::Packet::Subscribe(s)
                .write(buf, Some(max_packet))
                .map(|_| ())
                .map_err(|e| encode(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests;

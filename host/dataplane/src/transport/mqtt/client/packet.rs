//! MQTT framing, the same in 3.1.1 and 5: the fixed header (packet type,
//! flags, remaining length), the size limits, and the few packets small
//! enough to write by hand.
//!
//! Framing is checked here before rumqttc decodes a packet, so that the
//! decoder only ever sees complete packets: rumqttc reports a packet that
//! is too short inside as "insufficient bytes", which must then be taken as
//! malformed, not as a reason to wait for more.

use tokio_util::bytes::{BufMut, BytesMut};

/// Control packet types (the high nibble of the first byte).
pub(super) mod kind {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const UNSUBACK: u8 = 11;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
    /// MQTT 5 only.
    pub const AUTH: u8 = 15;
}

/// The name of a packet type, for messages.
pub(super) fn packet_name(packet_type: u8) -> &'static str {
    match packet_type {
        kind::CONNECT => "CONNECT",
        kind::CONNACK => "CONNACK",
        kind::PUBLISH => "PUBLISH",
        kind::PUBACK => "PUBACK",
        kind::PUBREC => "PUBREC",
        kind::PUBREL => "PUBREL",
        kind::PUBCOMP => "PUBCOMP",
        kind::SUBSCRIBE => "SUBSCRIBE",
        kind::SUBACK => "SUBACK",
        kind::UNSUBSCRIBE => "UNSUBSCRIBE",
        kind::UNSUBACK => "UNSUBACK",
        kind::PINGREQ => "PINGREQ",
        kind::PINGRESP => "PINGRESP",
        kind::DISCONNECT => "DISCONNECT",
        kind::AUTH => "AUTH",
        _ => "packet",
    }
}

/// First bytes (type and the flags the specification fixes) of the packets
/// written by hand.
pub(super) mod first_byte {
    use super::kind;

    /// PUBLISH; QoS (bits 1-2) and retain (bit 0) are or-ed in.
    pub const PUBLISH: u8 = kind::PUBLISH << 4;
    pub const PUBACK: u8 = kind::PUBACK << 4;
    pub const PUBREC: u8 = kind::PUBREC << 4;
    /// PUBREL has the reserved flags 0b0010.
    pub const PUBREL: u8 = (kind::PUBREL << 4) | 0b0010;
    pub const PUBCOMP: u8 = kind::PUBCOMP << 4;
    pub const PINGREQ: u8 = kind::PINGREQ << 4;
    pub const DISCONNECT: u8 = kind::DISCONNECT << 4;
}

/// MQTT 5 property identifiers we write.
pub(super) mod property {
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const USER_PROPERTY: u8 = 0x26;
}

/// Largest packet we accept from the broker (its remaining length), and
/// send; announced to MQTT 5 brokers in CONNECT.
pub(super) const MAX_PACKET: u32 = 16 * 1024 * 1024;
/// The largest value a variable byte integer (4 bytes) can hold.
pub(super) const MAX_REMAINING_LENGTH: usize = 268_435_455;
/// A variable byte integer has at most 4 bytes.
const MAX_VARINT_BYTES: usize = 4;

/// The fixed header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FixedHeader {
    pub byte1: u8,
    /// Length of the fixed header itself: 2 to 5 bytes.
    pub header_len: usize,
    /// Bytes after the fixed header.
    pub remaining_len: usize,
}

impl FixedHeader {
    pub fn packet_type(&self) -> u8 {
        self.byte1 >> 4
    }

    /// Bytes of the whole packet.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Why bytes from the broker cannot be a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Packet type 0, or 15 (AUTH: we never start enhanced
    /// authentication, so a broker has no reason to send it).
    UnknownType(u8),
    /// The remaining length runs over 4 bytes.
    MalformedRemainingLength,
    /// The remaining length is over our limit.
    TooLarge { remaining_len: usize, max: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::UnknownType(kind::AUTH) => {
                write!(f, "AUTH, but we asked for no enhanced authentication")
            }
            FrameError::UnknownType(t) => write!(f, "unknown packet type {t}"),
            FrameError::MalformedRemainingLength => {
                write!(
                    f,
                    "the remaining length is longer than {MAX_VARINT_BYTES} bytes"
                )
            }
            FrameError::TooLarge { remaining_len, max } => {
                write!(
                    f,
                    "a packet of {remaining_len} bytes is over the limit of {max} bytes"
                )
            }
        }
    }
}

/// The fixed header at the start of `buf` once the whole packet is there;
/// `None` while more bytes are needed. A bad type, length or size is an
/// error as soon as it can be seen, without waiting for the rest.
pub(super) fn complete_frame(
    buf: &[u8],
    max_remaining: usize,
) -> Result<Option<FixedHeader>, FrameError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let packet_type = byte1 >> 4;
    if !(kind::CONNECT..=kind::DISCONNECT).contains(&packet_type) {
        return Err(FrameError::UnknownType(packet_type));
    }
    let Some((varint_bytes, remaining_len)) = read_varint(&buf[1..])? else {
        return Ok(None);
    };
    if remaining_len > max_remaining {
        return Err(FrameError::TooLarge {
            remaining_len,
            max: max_remaining,
        });
    }
    let header = FixedHeader {
        byte1,
        header_len: 1 + varint_bytes,
        remaining_len,
    };
    Ok((buf.len() >= header.frame_len()).then_some(header))
}

/// A variable byte integer at the start of `buf`: (its bytes, its value),
/// `None` while incomplete.
fn read_varint(buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().enumerate() {
        if i == MAX_VARINT_BYTES {
            return Err(FrameError::MalformedRemainingLength);
        }
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
    }
    // Four bytes that all continue are malformed whatever follows.
    if buf.len() >= MAX_VARINT_BYTES {
        return Err(FrameError::MalformedRemainingLength);
    }
    Ok(None)
}

/// Appends `n` as a variable byte integer; `n` must be at most
/// [`MAX_REMAINING_LENGTH`] (callers check).
pub(super) fn put_varint(buf: &mut BytesMut, mut n: usize) {
    debug_assert!(n <= MAX_REMAINING_LENGTH);
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if n == 0 {
            return;
        }
    }
}

/// Bytes `n` takes as a variable byte integer.
pub(super) fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends a two-byte length and `s`; `s` must be at most 65,535 bytes
/// (callers check: the length would wrap and garble the stream).
pub(super) fn put_str(buf: &mut BytesMut, s: &[u8]) {
    debug_assert!(s.len() <= usize::from(u16::MAX));
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

/// A two-byte acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP): MQTT 5
/// allows leaving out a success reason code and the properties, so one
/// encoding serves both versions.
pub(super) fn put_ack(buf: &mut BytesMut, first_byte: u8, pkid: u16) {
    buf.put_u8(first_byte);
    buf.put_u8(2);
    buf.put_u16(pkid);
}

/// PINGREQ, and DISCONNECT (normal disconnection on MQTT 5), are two bytes.
pub(super) fn put_empty(buf: &mut BytesMut, first_byte: u8) {
    buf.put_u8(first_byte);
    buf.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = MAX_PACKET as usize;

    #[test]
    fn frames_a_complete_packet() {
        // PINGRESP: type 13, no body.
        let header = complete_frame(&[0xD0, 0x00], MAX).unwrap().unwrap();
        assert_eq!(header.packet_type(), kind::PINGRESP);
        assert_eq!((header.header_len, header.remaining_len), (2, 0));
        // PUBACK with a packet id, and a byte of the next packet behind.
        let header = complete_frame(&[0x40, 0x02, 0x00, 0x07, 0xD0], MAX)
            .unwrap()
            .unwrap();
        assert_eq!(header.packet_type(), kind::PUBACK);
        assert_eq!(header.frame_len(), 4);
    }

    #[test]
    fn waits_for_every_byte_of_a_split_packet() {
        // A PUBLISH of 200 bytes (two-byte remaining length), offered one
        // byte at a time: complete only at the last byte.
        let mut packet = vec![0x30, 0xC8, 0x01];
        packet.extend(std::iter::repeat_n(b'x', 200));
        for end in 0..packet.len() {
            assert_eq!(complete_frame(&packet[..end], MAX), Ok(None), "{end}");
        }
        let header = complete_frame(&packet, MAX).unwrap().unwrap();
        assert_eq!((header.header_len, header.remaining_len), (3, 200));
    }

    #[test]
    fn decodes_remaining_lengths_of_one_to_four_bytes() {
        for (bytes, value) in [
            (&[0x00][..], 0),
            (&[0x7F][..], 127),
            (&[0x80, 0x01][..], 128),
            (&[0xFF, 0x7F][..], 16_383),
            (&[0x80, 0x80, 0x01][..], 16_384),
            (&[0xFF, 0xFF, 0x7F][..], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01][..], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F][..], MAX_REMAINING_LENGTH),
        ] {
            assert_eq!(read_varint(bytes), Ok(Some((bytes.len(), value))));
            let mut written = BytesMut::new();
            put_varint(&mut written, value);
            assert_eq!(&written[..], bytes);
            assert_eq!(varint_len(value), bytes.len());
        }
    }

    #[test]
    fn a_fifth_remaining_length_byte_is_an_error() {
        // Known as soon as the fourth byte still continues.
        assert_eq!(
            complete_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF], usize::MAX),
            Err(FrameError::MalformedRemainingLength)
        );
        assert_eq!(
            complete_frame(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01], usize::MAX),
            Err(FrameError::MalformedRemainingLength)
        );
        // Three continuing bytes may still be followed by a last one.
        assert_eq!(
            complete_frame(&[0x30, 0xFF, 0xFF, 0xFF], usize::MAX),
            Ok(None)
        );
    }

    #[test]
    fn an_oversized_packet_is_refused_before_its_body_arrives() {
        // Remaining length 16 MiB + 1, announced in the header only.
        let mut header = BytesMut::from(&[0x30][..]);
        put_varint(&mut header, MAX + 1);
        assert_eq!(
            complete_frame(&header, MAX),
            Err(FrameError::TooLarge {
                remaining_len: MAX + 1,
                max: MAX
            })
        );
        let mut at_limit = BytesMut::from(&[0x30][..]);
        put_varint(&mut at_limit, MAX);
        assert_eq!(complete_frame(&at_limit, MAX), Ok(None));
        // The largest length MQTT can express against our limit.
        assert!(complete_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], MAX).is_err());
    }

    #[test]
    fn unknown_packet_types_are_errors() {
        assert_eq!(
            complete_frame(&[0x00], MAX),
            Err(FrameError::UnknownType(0))
        );
        assert_eq!(
            complete_frame(&[0x0F, 0x00], MAX),
            Err(FrameError::UnknownType(0))
        );
        // AUTH: we never start enhanced authentication.
        assert_eq!(
            complete_frame(&[0xF0, 0x00], MAX),
            Err(FrameError::UnknownType(kind::AUTH))
        );
    }

    #[test]
    fn empty_input_needs_more() {
        assert_eq!(complete_frame(&[], MAX), Ok(None));
        assert_eq!(complete_frame(&[0x30], MAX), Ok(None));
    }

    #[test]
    fn first_bytes_are_the_specifications() {
        use first_byte::*;
        assert_eq!(
            [
                PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, PINGREQ, DISCONNECT
            ],
            [0x30, 0x40, 0x50, 0x62, 0x70, 0xC0, 0xE0]
        );
        assert_eq!(packet_name(kind::SUBACK), "SUBACK");
        assert_eq!(packet_name(0), "packet");
    }

    #[test]
    fn writes_small_packets() {
        let mut buf = BytesMut::new();
        put_ack(&mut buf, first_byte::PUBACK, 0x1234);
        put_ack(&mut buf, first_byte::PUBREL, 1);
        put_empty(&mut buf, first_byte::PINGREQ);
        put_empty(&mut buf, first_byte::DISCONNECT);
        put_str(&mut buf, b"ab");
        assert_eq!(
            &buf[..],
            &[
                0x40, 2, 0x12, 0x34, 0x62, 2, 0, 1, 0xC0, 0, 0xE0, 0, 0, 2, b'a', b'b'
            ]
        );
    }
}

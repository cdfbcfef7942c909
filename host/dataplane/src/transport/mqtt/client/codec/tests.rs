//! Byte-level decoding of what a broker sends, v3.1.1 and v5, and the
//! PUBLISH encoder against rumqttc's decoder.

use super::*;

fn decode_all(version: MqttVersion, bytes: &[u8]) -> Result<Vec<Inbound>, ConnectionError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(p) = decode(version, &mut buf)? {
        out.push(p);
    }
    Ok(out)
}

fn one(version: MqttVersion, bytes: &[u8]) -> Inbound {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(version, &mut buf)
        .unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"))
        .unwrap_or_else(|| panic!("{bytes:02x?}: incomplete"));
    assert!(buf.is_empty(), "{bytes:02x?}: {} bytes left", buf.len());
    packet
}

fn error(version: MqttVersion, bytes: &[u8]) -> String {
    match decode_all(version, bytes) {
        Err(e) => e.to_string(),
        Ok(packets) => panic!("{bytes:02x?}: decoded {packets:?}"),
    }
}

#[test]
fn connack_v311() {
    let Inbound::ConnAck(Ok(a)) = one(MqttVersion::V311, &[0x20, 2, 1, 0]) else {
        panic!()
    };
    assert!(a.session_present);
    assert_eq!(
        (a.receive_max, a.max_packet_size, a.server_keep_alive),
        (None, None, None)
    );
    let Inbound::ConnAck(Err(e)) = one(MqttVersion::V311, &[0x20, 2, 0, 5]) else {
        panic!()
    };
    assert!(
        matches!(&e, ConnectionError::Refused(code) if code == "NotAuthorized"),
        "{e}"
    );
}

#[test]
fn connack_v5_with_properties() {
    let bytes = [
        0x20, 14, 0, 0, 11, 0x21, 0, 10, 0x27, 0, 0, 4, 0, 0x13, 0, 60,
    ];
    let Inbound::ConnAck(Ok(a)) = one(MqttVersion::V5, &bytes) else {
        panic!()
    };
    assert_eq!(
        a,
        Accepted {
            session_present: false,
            receive_max: Some(10),
            max_packet_size: Some(1024),
            server_keep_alive: Some(60),
        }
    );
    // A maximum packet size of 0 is a protocol error: ignored.
    let Inbound::ConnAck(Ok(a)) = one(MqttVersion::V5, &[0x20, 8, 0, 0, 5, 0x27, 0, 0, 0, 0])
    else {
        panic!()
    };
    assert_eq!(a.max_packet_size, None);
    let Inbound::ConnAck(Err(e)) = one(MqttVersion::V5, &[0x20, 3, 0, 0x86, 0]) else {
        panic!()
    };
    assert!(e.to_string().contains("BadUserNamePassword"), "{e}");
}

#[test]
fn publish_v311() {
    let Inbound::Publish(p) = one(
        MqttVersion::V311,
        &[0x32, 9, 0, 3, b'a', b'/', b'b', 0, 7, b'h', b'i'],
    ) else {
        panic!()
    };
    assert_eq!((p.topic.as_str(), p.qos, p.pkid), ("a/b", 1, 7));
    assert_eq!(p.payload, b"hi");
    // QoS 0: no packet id, empty payload.
    let Inbound::Publish(p) = one(MqttVersion::V311, &[0x30, 3, 0, 1, b't']) else {
        panic!()
    };
    assert_eq!((p.qos, p.pkid, p.payload.len()), (0, 0, 0));
}

#[test]
fn publish_v5_with_properties_and_a_lossy_topic() {
    let bytes = [
        0x34, 13, 0, 2, 0xC3, 0x28, 0, 1, // QoS 2, invalid UTF-8 topic, id 1
        5, 0x03, 0, 2, b'c', b't', // content type "ct"
        b'!', // payload
    ];
    let Inbound::Publish(p) = one(MqttVersion::V5, &bytes) else {
        panic!()
    };
    assert_eq!(p.topic, "\u{FFFD}(");
    assert_eq!(
        (p.qos, p.pkid, p.content_type.as_deref()),
        (2, 1, Some("ct"))
    );
    assert_eq!(p.payload, b"!");
}

#[test]
fn acknowledgements_v311_and_v5() {
    for version in [MqttVersion::V311, MqttVersion::V5] {
        assert!(matches!(
            one(version, &[0x40, 2, 0, 7]),
            Inbound::PubAck {
                pkid: 7,
                error: None
            }
        ));
        assert!(matches!(
            one(version, &[0x50, 2, 1, 0]),
            Inbound::PubRec {
                pkid: 256,
                error: None
            }
        ));
        assert!(matches!(
            one(version, &[0x62, 2, 0, 3]),
            Inbound::PubRel { pkid: 3 }
        ));
        assert!(matches!(
            one(version, &[0x70, 2, 0xFF, 0xFF]),
            Inbound::PubComp { pkid: 65535 }
        ));
        assert!(matches!(one(version, &[0xD0, 0]), Inbound::PingResp));
    }
    // v5 reason codes: "no matching subscribers" is a success.
    assert!(matches!(
        one(MqttVersion::V5, &[0x40, 3, 0, 7, 0x10]),
        Inbound::PubAck { error: None, .. }
    ));
    let Inbound::PubAck { error: Some(e), .. } = one(MqttVersion::V5, &[0x40, 4, 0, 7, 0x97, 0])
    else {
        panic!()
    };
    assert!(e.contains("QuotaExceeded"), "{e}");
    assert!(matches!(
        one(MqttVersion::V5, &[0x50, 3, 0, 7, 0x80]),
        Inbound::PubRec { error: Some(_), .. }
    ));
}

#[test]
fn suback_v311_and_v5() {
    assert!(matches!(
        one(MqttVersion::V311, &[0x90, 4, 0, 1, 1, 0x80]),
        Inbound::SubAck {
            pkid: 1,
            refused: 1
        }
    ));
    assert!(matches!(
        one(MqttVersion::V5, &[0x90, 6, 0, 2, 0, 0, 2, 0x87]),
        Inbound::SubAck {
            pkid: 2,
            refused: 1
        }
    ));
}

#[test]
fn disconnect_v311_and_v5() {
    let Inbound::Disconnect(e) = one(MqttVersion::V311, &[0xE0, 0]) else {
        panic!()
    };
    assert_eq!(e, None);
    let Inbound::Disconnect(e) = one(MqttVersion::V5, &[0xE0, 0]) else {
        panic!()
    };
    assert_eq!(e.as_deref(), Some("NormalDisconnection"));
    let Inbound::Disconnect(e) = one(MqttVersion::V5, &[0xE0, 2, 0x8E, 0]) else {
        panic!()
    };
    assert_eq!(e.as_deref(), Some("SessionTakenOver"));
}

#[test]
fn several_packets_in_one_buffer_and_one_split_across_reads() {
    let bytes = [0xD0, 0, 0x40, 2, 0, 1, 0x30, 3, 0, 1, b't', 0x40, 2];
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(
        decode(MqttVersion::V311, &mut buf),
        Ok(Some(Inbound::PingResp))
    ));
    assert!(matches!(
        decode(MqttVersion::V311, &mut buf),
        Ok(Some(Inbound::PubAck { .. }))
    ));
    assert!(matches!(
        decode(MqttVersion::V311, &mut buf),
        Ok(Some(Inbound::Publish(_)))
    ));
    // The last PUBACK is incomplete: kept until the rest arrives.
    assert!(matches!(decode(MqttVersion::V311, &mut buf), Ok(None)));
    assert_eq!(&buf[..], &[0x40, 2]);
    buf.extend_from_slice(&[0]);
    assert!(matches!(decode(MqttVersion::V311, &mut buf), Ok(None)));
    buf.extend_from_slice(&[9]);
    assert!(matches!(
        decode(MqttVersion::V311, &mut buf),
        Ok(Some(Inbound::PubAck { pkid: 9, .. }))
    ));
}

#[test]
fn byte_by_byte_every_well_formed_packet() {
    let packets: &[(MqttVersion, &[u8])] = &[
        (MqttVersion::V311, &[0x20, 2, 0, 0]),
        (MqttVersion::V5, &[0x20, 8, 0, 0, 5, 0x27, 0, 0, 1, 0]),
        (
            MqttVersion::V311,
            &[0x32, 9, 0, 3, b'a', b'/', b'b', 0, 7, b'h', b'i'],
        ),
        (MqttVersion::V5, &[0x30, 5, 0, 1, b't', 0, b'x']),
        (MqttVersion::V5, &[0x40, 4, 0, 7, 0x97, 0]),
        (MqttVersion::V5, &[0x90, 4, 0, 2, 0, 1]),
        (MqttVersion::V311, &[0xD0, 0]),
    ];
    for (version, bytes) in packets {
        let mut buf = BytesMut::new();
        for (i, byte) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let decoded = decode(*version, &mut buf).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                decoded.is_some(),
                i + 1 == bytes.len(),
                "{bytes:02x?} at {i}"
            );
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn malformed_packets_are_errors() {
    use MqttVersion::{V5, V311};
    let cases: &[(MqttVersion, &[u8], &str)] = &[
        (V311, &[0x00, 0], "unknown packet type 0"),
        (V5, &[0xF0, 0], "AUTH"),
        (V311, &[0x30, 0x80, 0x80, 0x80, 0x80], "remaining length"),
        (V5, &[0x30, 0x81, 0x80, 0x80, 0x08], "over the limit"),
        (V5, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F], "over the limit"),
        (V311, &[0x30, 3, 0, 5, b'a'], "boundary"),
        (V5, &[0x30, 3, 0, 5, b'a'], "boundary"),
        (V311, &[0x36, 5, 0, 1, b't', 0, 1], "QoS"),
        (V5, &[0x36, 6, 0, 1, b't', 0, 1, 0], "QoS"),
        (V311, &[0x32, 5, 0, 1, b't', 0, 0], "Zero"),
        (V5, &[0x32, 6, 0, 1, b't', 0, 0, 0], "Zero"),
        (V311, &[0x32, 4, 0, 1, b't', 0], "malformed"),
        (V311, &[0x30, 4, 0, 2, 0xC3, 0x28], "UTF-8"),
        (V311, &[0x40, 1, 7], "malformed"),
        (V5, &[0x40, 1, 7], "malformed"),
        (V311, &[0x40, 0], "required"),
        (V311, &[0x20, 0], "required"),
        (V311, &[0x20, 1, 0], "malformed"),
        (V311, &[0x20, 2, 0, 9], "return code"),
        (V5, &[0x20, 2, 0, 0], "malformed"),
        // Properties claiming more than there is.
        (V5, &[0x20, 5, 0, 0, 5, 0x21, 0], "malformed"),
        (V5, &[0x40, 6, 0, 1, 0, 2, 0x7F, 0], "property"),
        (V5, &[0x40, 4, 0, 1, 0x55, 0], "malformed"),
        (V311, &[0x90, 2, 0, 1], "malformed"),
        (V311, &[0x90, 3, 0, 1, 0x42], "malformed"),
        // No property length where MQTT 5 needs one: before, taken for
        // "insufficient bytes" after the frame was consumed, so the packet
        // vanished and what followed it stalled.
        (V5, &[0x90, 2, 0, 1, 0xD0, 0], "malformed"),
        (V5, &[0x30, 3, 0, 1, b't', 0xD0, 0], "malformed"),
        (V5, &[0x20, 2, 0, 0, 0xD0, 0], "malformed"),
        // A property length of five bytes.
        (
            V5,
            &[0x30, 8, 0, 1, b't', 0x80, 0x80, 0x80, 0x80, 0x01],
            "malformed",
        ),
        (V5, &[0xE0, 1, 0x01], "malformed"),
        (V5, &[0xE2, 0], "malformed"),
    ];
    for (version, bytes, expected) in cases {
        let e = error(*version, bytes);
        assert!(
            e.to_lowercase().contains(&expected.to_lowercase()),
            "{bytes:02x?}: {e}"
        );
    }
}

/// A small deterministic generator: the same inputs every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..50_000 {
        let len = (rng.next() % 40) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = bytes.first_mut() {
            // Mostly packet types a broker sends, with a small remaining
            // length that fits, so that the decoders get to run.
            let kind = [2u8, 3, 4, 5, 6, 7, 9, 11, 13, 14][(rng.next() % 10) as usize];
            if round % 4 != 0 {
                *first = (kind << 4) | (*first & 0x0F);
                if len > 1 {
                    bytes[1] = (len - 2) as u8;
                }
            }
        }
        for version in [MqttVersion::V311, MqttVersion::V5] {
            let _ = decode_all(version, &bytes);
        }
    }
}

fn roundtrip5(message: &OutgoingPublish<'_>, pkid: u16) -> p5::Publish {
    let layout = message.layout(MqttVersion::V5).unwrap();
    let mut buf = BytesMut::new();
    message.write(MqttVersion::V5, &layout, pkid, &mut buf);
    assert_eq!(buf.len(), layout.size);
    match p5::Packet::read(&mut buf, None) {
        Ok(p5::Packet::Publish(p)) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn our_publish_encoding_is_what_rumqttc_decodes() {
    let headers = [
        ("k".to_owned(), b"v".to_vec()),
        ("empty".to_owned(), Vec::new()),
    ];
    let payload = vec![0xAB; 300];
    let message = OutgoingPublish {
        topic: "a/b",
        qos: Qos::ExactlyOnce,
        retain: true,
        payload: &payload,
        content_type: Some("application/json"),
        headers: &headers,
    };
    let p = roundtrip5(&message, 513);
    assert_eq!((p.qos as u8, p.pkid, p.retain), (2, 513, true));
    assert_eq!(&p.topic[..], b"a/b");
    assert_eq!(&p.payload[..], &payload[..]);
    let props = p.properties.unwrap();
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.user_properties.len(), 2);

    // v3.1.1: no properties; the content type is not sent.
    let message = OutgoingPublish {
        headers: &[],
        qos: Qos::AtMostOnce,
        ..message
    };
    let layout = message.layout(MqttVersion::V311).unwrap();
    let mut buf = BytesMut::new();
    message.write(MqttVersion::V311, &layout, 0, &mut buf);
    assert_eq!(buf.len(), layout.size);
    match p4::Packet::read(&mut buf, usize::MAX) {
        Ok(p4::Packet::Publish(p)) => {
            assert_eq!(
                (p.topic.as_str(), p.qos as u8, p.payload.len()),
                ("a/b", 0, 300)
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn publish_layout_sizes_and_refusals() {
    let base = OutgoingPublish {
        topic: "t",
        qos: Qos::AtLeastOnce,
        retain: false,
        payload: &[],
        content_type: None,
        headers: &[],
    };
    // 0x32, length, topic (3), packet id (2), property length (v5).
    assert_eq!(base.layout(MqttVersion::V311).unwrap().size, 7);
    assert_eq!(base.layout(MqttVersion::V5).unwrap().size, 8);
    let headers = [("h".to_owned(), b"v".to_vec())];
    let with_headers = OutgoingPublish {
        headers: &headers,
        ..base
    };
    assert_eq!(
        with_headers.layout(MqttVersion::V311),
        Err(InvalidPublish::HeadersOnV311)
    );
    let long = "x".repeat(usize::from(u16::MAX) + 1);
    let long_ct = OutgoingPublish {
        content_type: Some(&long),
        ..base
    };
    assert_eq!(
        long_ct.layout(MqttVersion::V5),
        Err(InvalidPublish::ContentTypeTooLong)
    );
    // On 3.1.1 the content type is not sent, so its length does not matter.
    assert!(long_ct.layout(MqttVersion::V311).is_ok());
    for topic in ["", "a/#", "+", "a\0b", long.as_str()] {
        let bad = OutgoingPublish { topic, ..base };
        assert!(bad.layout(MqttVersion::V5).is_err(), "{topic:.10}");
    }
}

#[test]
fn packets_a_client_does_not_act_on_are_ignored_by_name() {
    for version in [MqttVersion::V311, MqttVersion::V5] {
        let unsuback: &[u8] = match version {
            MqttVersion::V311 => &[0xB0, 2, 0, 1],
            MqttVersion::V5 => &[0xB0, 4, 0, 1, 0, 0],
        };
        assert!(matches!(
            one(version, unsuback),
            Inbound::Ignored("UNSUBACK")
        ));
        assert!(matches!(
            one(version, &[0xC0, 0]),
            Inbound::Ignored("PINGREQ")
        ));
    }
    assert_eq!(one(MqttVersion::V311, &[0xD0, 0]).name(), "PINGRESP");
}

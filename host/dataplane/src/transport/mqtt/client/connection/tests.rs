//! The connection loop against a scripted fake broker over an in-memory
//! duplex: what goes out, byte for byte, and what each answer from the
//! broker turns into. Malformed input must end the connection with an
//! error (a panic fails the test).

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::bytes::BytesMut;

use super::super::dial::{Params, Target};
use super::super::packet::{complete_frame, kind};
use super::*;
use crate::transport::mqtt::MqttVersion;

const V311_CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
const V5_CONNACK: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
const WAIT: Duration = Duration::from_secs(5);

fn params(version: MqttVersion, streams: Vec<DuplexStream>) -> Params {
    Params {
        version,
        target: Target::Memory(Mutex::new(streams.into())),
        username: None,
        password: None,
        keep_alive: Duration::from_secs(30),
        client_id: "test".into(),
        clean: true,
        session_expiry_s: 0,
    }
}

/// The broker's end of the duplex.
struct Broker {
    io: DuplexStream,
    rbuf: BytesMut,
}

impl Broker {
    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next whole packet the client wrote.
    async fn expect(&mut self) -> Vec<u8> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(h) = complete_frame(&self.rbuf, usize::MAX).unwrap() {
                    return self.rbuf.split_to(h.frame_len()).to_vec();
                }
                assert!(
                    self.io.read_buf(&mut self.rbuf).await.unwrap() > 0,
                    "closed"
                );
            }
        })
        .await
        .expect("no packet from the client")
    }
}

async fn next_event(conn: &mut Connection) -> Result<Ev, ConnectionError> {
    tokio::time::timeout(WAIT, conn.poll())
        .await
        .expect("no event")
}

/// Polls for a moment (which writes what is buffered), expecting no event.
async fn idle(conn: &mut Connection) {
    if let Ok(ev) = tokio::time::timeout(Duration::from_millis(30), conn.poll()).await {
        panic!("unexpected {ev:?}");
    }
}

/// A connection over `streams.len()` successive duplexes, connected on the
/// first, whose broker ends come back.
async fn connect_n(
    version: MqttVersion,
    connack: &[u8],
    manual_acks: bool,
    inflight: u16,
    n: usize,
) -> (Connection, Vec<Broker>) {
    let (clients, mut brokers): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| {
            let (client, server) = tokio::io::duplex(1 << 20);
            (
                client,
                Broker {
                    io: server,
                    rbuf: BytesMut::new(),
                },
            )
        })
        .unzip();
    let mut conn = Connection::new(params(version, clients), manual_acks, inflight);
    brokers[0].send(connack).await;
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Connected { .. })
    ));
    assert_eq!(brokers[0].expect().await[0] >> 4, kind::CONNECT);
    assert!(conn.is_connected());
    (conn, brokers)
}

async fn connect(version: MqttVersion) -> (Connection, Broker) {
    let connack = match version {
        MqttVersion::V311 => V311_CONNACK,
        MqttVersion::V5 => V5_CONNACK,
    };
    let (conn, mut brokers) = connect_n(version, connack, false, 10, 1).await;
    (conn, brokers.remove(0))
}

fn publish(conn: &mut Connection, topic: &str, qos: Qos, payload: &[u8]) -> u16 {
    match conn.publish(topic, qos, false, payload, None, &[]) {
        Ok(pkid) => pkid,
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn qos1_publish_and_puback_v311() {
    let (mut conn, mut broker) = connect(MqttVersion::V311).await;
    assert_eq!(publish(&mut conn, "a/b", Qos::AtLeastOnce, b"hi"), 1);
    idle(&mut conn).await;
    assert_eq!(
        broker.expect().await,
        [0x32, 9, 0, 3, b'a', b'/', b'b', 0, 1, b'h', b'i']
    );
    broker.send(&[0x40, 0x02, 0x00, 0x01]).await;
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Acked {
            pkid: 1,
            error: None
        })
    ));
}

#[tokio::test]
async fn qos1_publish_with_properties_v5() {
    let (mut conn, mut broker) = connect(MqttVersion::V5).await;
    let headers = [("k".to_owned(), b"v".to_vec())];
    let pkid = conn
        .publish("t", Qos::AtLeastOnce, true, b"x", Some("a/b"), &headers)
        .unwrap_or_else(|e| panic!("{e:?}"));
    idle(&mut conn).await;
    let expected: &[u8] = &[
        0x33, 20, 0, 1, b't', 0, 1, // retain, QoS 1, topic, packet id
        13, 0x03, 0, 3, b'a', b'/', b'b', // content type
        0x26, 0, 1, b'k', 0, 1, b'v', // user property
        b'x',
    ];
    assert_eq!(broker.expect().await, expected);
    // Refused, with a reason code and an empty property length.
    broker.send(&[0x40, 0x04, 0x00, 0x01, 0x87, 0x00]).await;
    match next_event(&mut conn).await {
        Ok(Ev::Acked {
            pkid: p,
            error: Some(e),
        }) if p == pkid => assert!(e.contains("NotAuthorized")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn acknowledgements_for_ids_we_did_not_use_are_ignored() {
    let (mut conn, mut broker) = connect(MqttVersion::V311).await;
    publish(&mut conn, "t", Qos::AtLeastOnce, b"");
    idle(&mut conn).await;
    broker.expect().await;
    // PUBACK 99, PUBCOMP 1 (it is a QoS 1 publish), SUBACK 7, PINGRESP:
    // nothing; then the real PUBACK.
    broker
        .send(&[
            0x40, 2, 0, 99, 0x70, 2, 0, 1, 0x90, 3, 0, 7, 0, 0xD0, 0, 0x40, 2, 0, 1,
        ])
        .await;
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Acked { pkid: 1, .. })
    ));
    // A duplicate is ignored too.
    broker.send(&[0x40, 2, 0, 1]).await;
    idle(&mut conn).await;
    assert!(conn.is_connected());
}

#[tokio::test]
async fn qos2_publish_is_released_then_completed() {
    let (mut conn, mut broker) = connect(MqttVersion::V5).await;
    let pkid = publish(&mut conn, "t", Qos::ExactlyOnce, b"p");
    idle(&mut conn).await;
    assert_eq!(broker.expect().await[0], 0x34);
    broker.send(&[0x50, 2, 0, 1]).await;
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Received {
            pkid: 1,
            error: None
        })
    ));
    idle(&mut conn).await;
    assert_eq!(broker.expect().await, [0x62, 2, 0, 1]);
    broker.send(&[0x70, 2, 0, 1]).await;
    assert!(matches!(next_event(&mut conn).await, Ok(Ev::Completed { pkid: p }) if p == pkid));
}

#[tokio::test]
async fn incoming_qos2_is_acknowledged_automatically() {
    let (mut conn, mut broker) = connect(MqttVersion::V311).await;
    broker.send(&[0x34, 6, 0, 1, b't', 0, 5, b'!']).await;
    match next_event(&mut conn).await {
        Ok(Ev::Publish(p)) => {
            assert_eq!(
                (p.topic.as_str(), &p.payload[..], p.qos, p.pkid),
                ("t", &b"!"[..], 2, 5)
            )
        }
        other => panic!("{other:?}"),
    }
    idle(&mut conn).await;
    assert_eq!(broker.expect().await, [0x50, 2, 0, 5]);
    broker.send(&[0x62, 2, 0, 5]).await;
    idle(&mut conn).await;
    assert_eq!(broker.expect().await, [0x70, 2, 0, 5]);
}

#[tokio::test]
async fn manual_acks_wait_for_the_owner() {
    let (mut conn, mut brokers) = connect_n(MqttVersion::V5, V5_CONNACK, true, 10, 1).await;
    let broker = &mut brokers[0];
    // v5 PUBLISH, QoS 1, with a content type and a user property.
    broker
        .send(&[
            0x32, 20, 0, 1, b't', 0, 9, 13, 0x03, 0, 3, b'a', b'/', b'b', 0x26, 0, 1, b'k', 0, 1,
            b'v', b'x',
        ])
        .await;
    match next_event(&mut conn).await {
        Ok(Ev::Publish(p)) => {
            assert_eq!(p.content_type.as_deref(), Some("a/b"));
            assert_eq!(p.user_properties, [("k".to_owned(), "v".to_owned())]);
            assert_eq!((p.pkid, &p.payload[..]), (9, &b"x"[..]));
        }
        other => panic!("{other:?}"),
    }
    conn.ack(1, 9);
    idle(&mut conn).await;
    assert_eq!(broker.expect().await, [0x40, 2, 0, 9]);
}

#[tokio::test]
async fn a_packet_split_byte_by_byte_arrives_whole() {
    let (mut conn, mut broker) = connect(MqttVersion::V311).await;
    let mut packet = vec![0x32, 0xCD, 0x01, 0, 1, b't', 0, 3];
    packet.extend(std::iter::repeat_n(7u8, 200));
    let writer = async {
        for byte in &packet {
            broker
                .io
                .write_all(std::slice::from_ref(byte))
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
    };
    let (_, event) = tokio::join!(writer, next_event(&mut conn));
    match event {
        Ok(Ev::Publish(p)) => assert_eq!((p.pkid, p.payload.len()), (3, 200)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_publish_larger_than_one_read_and_messages_right_after_connack() {
    let (client, server) = tokio::io::duplex(1 << 20);
    let mut broker = Broker {
        io: server,
        rbuf: BytesMut::new(),
    };
    let mut conn = Connection::new(params(MqttVersion::V311, vec![client]), false, 10);
    // CONNACK and a resumed session's 200 KB message in one write.
    let payload = vec![1u8; 200_000];
    let mut bytes = V311_CONNACK.to_vec();
    let mut publish = BytesMut::from(&[0x30][..]);
    super::super::packet::put_varint(&mut publish, 3 + payload.len());
    publish.extend_from_slice(&[0, 1, b't']);
    publish.extend_from_slice(&payload);
    bytes.extend_from_slice(&publish);
    let writer = broker.send(&bytes);
    let (_, first) = tokio::join!(writer, next_event(&mut conn));
    assert!(matches!(
        first,
        Ok(Ev::Connected {
            session_present: false
        })
    ));
    match next_event(&mut conn).await {
        Ok(Ev::Publish(p)) => assert_eq!(p.payload, payload),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn qos0_publishes_are_reported_once_written() {
    let (mut conn, mut broker) = connect(MqttVersion::V5).await;
    for _ in 0..3 {
        assert_eq!(publish(&mut conn, "t", Qos::AtMostOnce, b"."), 0);
    }
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Flushed { qos0: 3 })
    ));
    for _ in 0..3 {
        assert_eq!(broker.expect().await, [0x30, 5, 0, 1, b't', 0, b'.']);
    }
}

#[tokio::test]
async fn the_brokers_limits_from_connack_v5() {
    // Receive maximum 1, maximum packet size 20, server keep-alive 60 s.
    let connack = &[
        0x20, 17, 0, 0, 14, 0x21, 0, 1, 0x27, 0, 0, 0, 20, 0x13, 0, 60, 0x22, 0, 0,
    ];
    let (mut conn, _brokers) = connect_n(MqttVersion::V5, connack, false, 100, 1).await;
    assert_eq!(conn.keep_alive, Duration::from_secs(60));
    assert!(matches!(
        conn.publish("t", Qos::AtLeastOnce, false, &[0; 30], None, &[]),
        Err(PublishError::Invalid(_))
    ));
    publish(&mut conn, "t", Qos::AtLeastOnce, b"");
    assert!(matches!(
        conn.publish("t", Qos::AtLeastOnce, false, b"", None, &[]),
        Err(PublishError::Full)
    ));
    // QoS 0 is outside the window.
    publish(&mut conn, "t", Qos::AtMostOnce, b"");
}

#[tokio::test]
async fn a_maximum_packet_size_of_zero_is_ignored() {
    let connack = &[0x20, 8, 0, 0, 5, 0x27, 0, 0, 0, 0];
    let (mut conn, _brokers) = connect_n(MqttVersion::V5, connack, false, 10, 1).await;
    publish(&mut conn, "t", Qos::AtLeastOnce, b"still sent");
}

#[tokio::test]
async fn subscribe_and_suback() {
    for version in [MqttVersion::V311, MqttVersion::V5] {
        let (mut conn, mut broker) = connect(version).await;
        conn.subscribe(&["a/#".into(), "b".into()], Qos::AtLeastOnce)
            .unwrap();
        idle(&mut conn).await;
        let sub = broker.expect().await;
        assert_eq!(sub[0], 0x82);
        let pkid = [sub[2], sub[3]];
        match version {
            MqttVersion::V311 => broker.send(&[0x90, 4, pkid[0], pkid[1], 1, 0x80]).await,
            MqttVersion::V5 => broker.send(&[0x90, 5, pkid[0], pkid[1], 0, 1, 0x87]).await,
        }
        assert!(matches!(
            next_event(&mut conn).await,
            Ok(Ev::Subscribed { refused: 1 })
        ));
    }
}

#[tokio::test]
async fn keep_alive_pings_and_gives_up_without_an_answer() {
    let (client, server) = tokio::io::duplex(4096);
    let mut broker = Broker {
        io: server,
        rbuf: BytesMut::new(),
    };
    let mut p = params(MqttVersion::V311, vec![client]);
    p.keep_alive = Duration::from_millis(150);
    let mut conn = Connection::new(p, false, 10);
    broker.send(V311_CONNACK).await;
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Connected { .. })
    ));
    broker.expect().await;
    // Answered pings keep it up (answered at once, so that no timing on a
    // busy machine can make one look late).
    for _ in 0..3 {
        let ping = tokio::select! {
            ev = conn.poll() => panic!("unexpected {ev:?}"),
            ping = broker.expect() => ping,
        };
        assert_eq!(ping, [0xC0, 0]);
        broker.send(&[0xD0, 0]).await;
    }
    assert!(conn.is_connected());
    // Unanswered: down at the next tick.
    let e = next_event(&mut conn).await.unwrap_err();
    assert!(matches!(e, ConnectionError::NoPingResp), "{e}");
    assert!(!conn.is_connected());
}

#[tokio::test]
async fn the_broker_closing_or_disconnecting_is_an_error() {
    let (mut conn, broker) = connect(MqttVersion::V311).await;
    drop(broker);
    let e = next_event(&mut conn).await.unwrap_err();
    assert!(matches!(e, ConnectionError::Closed), "{e}");

    let (mut conn, mut broker) = connect(MqttVersion::V5).await;
    // MQTT 5's bare DISCONNECT (normal disconnection).
    broker.send(&[0xE0, 0]).await;
    let e = next_event(&mut conn).await.unwrap_err();
    assert!(
        matches!(&e, ConnectionError::Disconnected(Some(r)) if r == "NormalDisconnection"),
        "{e}"
    );

    let (mut conn, mut broker) = connect(MqttVersion::V5).await;
    broker.send(&[0xE0, 2, 0x8B, 0]).await;
    assert!(
        next_event(&mut conn)
            .await
            .unwrap_err()
            .to_string()
            .contains("ServerShuttingDown")
    );
}

#[tokio::test]
async fn malformed_packets_end_the_connection_with_an_error() {
    let cases: &[(MqttVersion, &[u8], &str)] = &[
        (MqttVersion::V311, &[0x00, 0x00], "unknown packet type"),
        (MqttVersion::V5, &[0xF0, 0x00], "AUTH"),
        (
            MqttVersion::V311,
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF],
            "remaining length",
        ),
        (
            MqttVersion::V5,
            &[0x30, 0x81, 0x80, 0x80, 0x08],
            "over the limit",
        ),
        // Topic length 5 in a 3-byte body.
        (MqttVersion::V311, &[0x30, 3, 0, 5, b'a'], "malformed"),
        // QoS 3.
        (MqttVersion::V311, &[0x36, 5, 0, 1, b't', 0, 1], "QoS"),
        // Packet id 0 on QoS 1.
        (MqttVersion::V5, &[0x32, 6, 0, 1, b't', 0, 0, 0], "Zero"),
        // PUBACK too short for its packet id.
        (MqttVersion::V311, &[0x40, 1, 7], "malformed"),
        // Before: these two (no property length in a v5 SUBACK / PUBLISH)
        // were taken for "more bytes needed" after the frame was consumed,
        // so they vanished and stalled what followed them.
        (MqttVersion::V5, &[0x90, 2, 0, 1, 0xD0, 0], "malformed"),
        (
            MqttVersion::V5,
            &[0x30, 3, 0, 1, b't', 0xD0, 0],
            "malformed",
        ),
        // Invalid UTF-8 topic on 3.1.1.
        (MqttVersion::V311, &[0x30, 4, 0, 2, 0xC3, 0x28], "UTF-8"),
        // Unknown v5 property in a PUBACK.
        (MqttVersion::V5, &[0x40, 6, 0, 1, 0, 2, 0x7F, 0], "property"),
        // SUBACK with an invalid return code.
        (MqttVersion::V311, &[0x90, 3, 0, 1, 0x42], "malformed"),
        // A CONNACK without its body.
        (MqttVersion::V311, &[0x20, 0], "malformed"),
    ];
    for (version, bytes, expected) in cases {
        let connack = match version {
            MqttVersion::V311 => V311_CONNACK,
            MqttVersion::V5 => V5_CONNACK,
        };
        let (mut conn, mut brokers) = connect_n(*version, connack, false, 10, 2).await;
        brokers[0].send(bytes).await;
        let e = match next_event(&mut conn).await {
            Err(e) => e.to_string(),
            Ok(ev) => panic!("{bytes:02x?}: {ev:?}"),
        };
        assert!(e.contains(expected), "{bytes:02x?}: {e}");
        assert!(!conn.is_connected());
        // Polling again reconnects (on the next stream).
        brokers[1].send(connack).await;
        assert!(matches!(
            next_event(&mut conn).await,
            Ok(Ev::Connected { .. })
        ));
    }
}

#[tokio::test]
async fn a_reconnect_forgets_what_was_in_flight() {
    let (mut conn, mut brokers) = connect_n(MqttVersion::V311, V311_CONNACK, false, 1, 2).await;
    publish(&mut conn, "t", Qos::AtLeastOnce, b"");
    idle(&mut conn).await;
    brokers[0].send(&[0xE0, 0]).await;
    assert!(next_event(&mut conn).await.is_err());
    brokers[1].send(&[0x20, 2, 0, 0, 0x40, 2, 0, 1]).await;
    assert!(matches!(
        next_event(&mut conn).await,
        Ok(Ev::Connected { .. })
    ));
    // The old PUBACK matches nothing; the window (1) is free again.
    idle(&mut conn).await;
    assert_eq!(publish(&mut conn, "t", Qos::AtLeastOnce, b""), 2);
}

#[tokio::test]
async fn invalid_messages_are_refused_before_anything_is_written() {
    let (mut conn, _broker) = connect(MqttVersion::V5).await;
    let long = "x".repeat(70_000);
    let invalid =
        |conn: &mut Connection, topic: &str, ct: Option<&str>, h: &[(String, Vec<u8>)]| {
            matches!(
                conn.publish(topic, Qos::AtLeastOnce, false, b"", ct, h),
                Err(PublishError::Invalid(_))
            )
        };
    assert!(invalid(&mut conn, "", None, &[]));
    assert!(invalid(&mut conn, "a/+", None, &[]));
    assert!(invalid(&mut conn, &long, None, &[]));
    // Before: a content type over 65,535 bytes was written with its length
    // wrapped, garbling the stream.
    assert!(invalid(&mut conn, "t", Some(&long), &[]));
    assert!(invalid(&mut conn, "t", None, &[("h".into(), vec![0xFF])]));
    assert!(invalid(
        &mut conn,
        "t",
        None,
        &[("h".into(), long.clone().into_bytes())]
    ));
    assert!(conn.wbuf.is_empty());
    assert!(conn.inflight.has_room());
}

#[tokio::test]
async fn publishing_while_down_is_full_not_an_error() {
    let mut conn = Connection::new(params(MqttVersion::V311, Vec::new()), false, 10);
    assert!(matches!(
        conn.publish("t", Qos::AtLeastOnce, false, b"", None, &[]),
        Err(PublishError::Full)
    ));
    assert!(conn.subscribe(&["t".into()], Qos::AtMostOnce).is_err());
    conn.ack(1, 1);
    conn.disconnect();
    assert!(conn.wbuf.is_empty());
    // No stream to connect to: an error, polling again retries.
    assert!(next_event(&mut conn).await.is_err());
    assert!(next_event(&mut conn).await.is_err());
}

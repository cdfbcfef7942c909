//! One MQTT connection (3.1.1 or 5), driven by the task that owns it.
//!
//! rumqttc's packet codecs decode what the broker sends; the connection
//! itself is ours, for throughput: rumqttc's event loop writes and flushes
//! every outgoing packet separately (one system call, and one TCP segment,
//! per PUBLISH and per PUBACK), and hands every packet through a channel
//! and back as an event. Here the owner encodes packets straight into a
//! write buffer ([`Connection::publish`], [`Connection::ack`]), and
//! [`Connection::poll`] writes the whole buffer at once before it reads:
//! a batch of 2,000 publishes or acknowledgements goes out in a few large
//! writes. [`Connection::poll`] is cancel-safe, so the owner can `select!`
//! on it.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use rumqttc::mqttbytes::v4 as p4;
use rumqttc::tokio_rustls::TlsConnector;
use rumqttc::tokio_rustls::client::TlsStream;
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::bytes::{Buf, BufMut, BytesMut};

use super::{MqttBrokerConfig, MqttVersion, Qos};
use crate::transport::TransportError;

/// Largest packet we accept from the broker, and send.
const MAX_PACKET: u32 = 16 * 1024 * 1024;
/// Encoded bytes waiting to be written beyond which [`Connection::publish`]
/// says `Full` (the owner polls, which writes them, and tries again).
const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// Bytes read at most per read call.
const READ_CHUNK: usize = 64 * 1024;
/// Time allowed for TCP, TLS and CONNECT/CONNACK together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to connect.
pub(crate) struct Options {
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean: bool,
    /// MQTT 5 session expiry for persistent sessions, in seconds.
    pub session_expiry_s: u32,
    /// Incoming QoS 1/2 messages are acknowledged by the owner
    /// ([`Connection::ack`]) rather than on receipt.
    pub manual_acks: bool,
    /// Outgoing QoS 1/2 publishes in flight at most (the broker's MQTT 5
    /// receive maximum lowers it).
    pub inflight: u16,
}

/// A message that arrived.
pub(crate) struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub pkid: u16,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

/// What the connection reports.
pub(crate) enum Ev {
    /// Connected; whether the broker still had our session.
    Connected {
        session_present: bool,
    },
    Publish(Incoming),
    /// The write buffer was written out; it held `qos0` QoS 0 publishes
    /// (written is all we will ever know of those).
    Flushed {
        qos0: usize,
    },
    /// PUBACK (QoS 1): `error` when the broker refused (MQTT 5 reason code).
    Acked {
        pkid: u16,
        error: Option<String>,
    },
    /// PUBREC (QoS 2, first half): `error` when the broker refused.
    Received {
        pkid: u16,
        error: Option<String>,
    },
    /// PUBCOMP (QoS 2, done).
    Completed {
        pkid: u16,
    },
    /// SUBACK: filters the broker refused.
    Subscribed {
        refused: usize,
    },
}

/// Why a publish could not be handed to the connection.
pub(crate) enum PublishError {
    /// Not connected, the in-flight window is full, or too much is waiting
    /// to be written; try again after polling.
    Full,
    /// The message cannot be sent on this protocol.
    Invalid(String),
}

/// A topic name we may publish to: non-empty, no wildcards, no NUL.
pub(crate) fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// Everything needed to (re)connect.
struct Params {
    version: MqttVersion,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    username: Option<String>,
    password: Option<String>,
    keep_alive: Duration,
    client_id: String,
    clean: bool,
    session_expiry_s: u32,
}

/// What the CONNACK told us.
struct Accepted {
    session_present: bool,
    receive_max: Option<u16>,
    max_packet_size: Option<u32>,
    server_keep_alive: Option<u16>,
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// State of one outgoing packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Free,
    /// QoS 1 publish awaiting PUBACK.
    Ack,
    /// QoS 2 publish awaiting PUBREC.
    Rec,
    /// QoS 2 publish released, awaiting PUBCOMP.
    Comp,
    /// SUBSCRIBE awaiting SUBACK.
    Sub,
}

enum Link {
    Down,
    Connecting(BoxFuture<'static, Result<(Stream, BytesMut, Accepted), String>>),
    Up(Stream),
}

/// One connection to an MQTT broker, reconnecting when polled after a
/// failure. Everything in flight is forgotten on a disconnect: owners
/// resend (sink) or rely on the broker's session (source).
pub(crate) struct Connection {
    params: Arc<Params>,
    manual_acks: bool,
    link: Link,
    /// Encoded packets not written yet.
    wbuf: BytesMut,
    /// The socket's stream has unflushed data (TLS).
    unflushed: bool,
    /// Bytes read and not decoded yet.
    rbuf: BytesMut,
    /// Where the socket is read into.
    scratch: Box<[u8]>,
    events: VecDeque<Ev>,
    /// Per packet id (index), what we wait for.
    out: Vec<Out>,
    next_pkid: u16,
    /// Publishes (QoS 1/2) in flight.
    inflight: usize,
    /// In-flight publishes allowed (ours, lowered by the broker's).
    limit: usize,
    configured_limit: usize,
    /// The broker's maximum packet size.
    max_outgoing: u32,
    /// QoS 0 publishes in `wbuf`.
    qos0_buffered: usize,
    /// Report [`Ev::Flushed`] when `wbuf` is written out even without QoS 0
    /// publishes in it (a publish was refused as `Full` for its size).
    report_flush: bool,
    keep_alive: Duration,
    ping: Pin<Box<Sleep>>,
    ping_outstanding: bool,
}

/// Creates a connection; nothing connects until it is polled.
pub(crate) fn create(
    broker: &MqttBrokerConfig,
    options: &Options,
) -> Result<Connection, TransportError> {
    let params = Params {
        version: broker.version,
        host: broker.host().to_owned(),
        port: broker.port(),
        tls: broker.tls_config()?,
        username: broker.username.clone(),
        password: broker.password.as_ref().map(|p| p.expose().to_owned()),
        keep_alive: broker.keep_alive(),
        client_id: options.client_id.clone(),
        clean: options.clean,
        session_expiry_s: options.session_expiry_s,
    };
    let limit = usize::from(options.inflight.max(1));
    Ok(Connection {
        keep_alive: params.keep_alive,
        params: Arc::new(params),
        manual_acks: options.manual_acks,
        link: Link::Down,
        wbuf: BytesMut::new(),
        unflushed: false,
        rbuf: BytesMut::new(),
        scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        events: VecDeque::new(),
        out: vec![Out::Free; usize::from(u16::MAX) + 1],
        next_pkid: 1,
        inflight: 0,
        limit,
        configured_limit: limit,
        max_outgoing: MAX_PACKET,
        qos0_buffered: 0,
        report_flush: false,
        ping: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        ping_outstanding: false,
    })
}

fn io_error(e: io::Error) -> String {
    e.to_string()
}

/// Connects, sends CONNECT and waits for the CONNACK. Returns what was read
/// after the CONNACK too (the broker may resend session messages at once).
async fn connect(p: Arc<Params>) -> Result<(Stream, BytesMut, Accepted), String> {
    let attempt = async {
        let tcp = TcpStream::connect((p.host.as_str(), p.port))
            .await
            .map_err(io_error)?;
        let _ = tcp.set_nodelay(true);
        let mut stream = match &p.tls {
            None => Stream::Tcp(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(p.host.clone())
                    .map_err(|e| format!("invalid TLS server name `{}`: {e}", p.host))?;
                let tls = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                Stream::Tls(Box::new(tls))
            }
        };
        let keep_alive = u16::try_from(p.keep_alive.as_secs()).unwrap_or(u16::MAX);
        let mut buf = BytesMut::with_capacity(256);
        match p.version {
            MqttVersion::V311 => {
                let mut c = p4::Connect::new(p.client_id.clone());
                c.keep_alive = keep_alive;
                c.clean_session = p.clean;
                if let Some(u) = &p.username {
                    c.set_login(u.clone(), p.password.clone().unwrap_or_default());
                }
                p4::Packet::Connect(c)
                    .write(&mut buf, MAX_PACKET as usize)
                    .map_err(|e| e.to_string())?;
            }
            MqttVersion::V5 => {
                let mut props = p5::ConnectProperties::new();
                props.max_packet_size = Some(MAX_PACKET);
                if !p.clean {
                    props.session_expiry_interval = Some(p.session_expiry_s.max(1));
                }
                let login = p.username.as_ref().map(|u| p5::Login {
                    username: u.clone(),
                    password: p.password.clone().unwrap_or_default(),
                });
                p5::Packet::Connect(
                    p5::Connect {
                        keep_alive,
                        client_id: p.client_id.clone(),
                        clean_start: p.clean,
                        properties: Some(props),
                    },
                    None,
                    login,
                )
                .write(&mut buf, None)
                .map_err(|e| e.to_string())?;
            }
        }
        stream.write_all(&buf).await.map_err(io_error)?;
        stream.flush().await.map_err(io_error)?;
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            if let Some(accepted) = read_connack(p.version, &mut rbuf)? {
                return Ok((stream, rbuf, accepted));
            }
            if stream.read_buf(&mut rbuf).await.map_err(io_error)? == 0 {
                return Err("the broker closed the connection before CONNACK".into());
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("no CONNACK within {CONNECT_TIMEOUT:?}"))?
}

/// The CONNACK at the start of `rbuf`, if complete.
fn read_connack(version: MqttVersion, rbuf: &mut BytesMut) -> Result<Option<Accepted>, String> {
    match version {
        MqttVersion::V311 => match p4::Packet::read(rbuf, MAX_PACKET as usize) {
            Ok(p4::Packet::ConnAck(c)) if c.code == p4::ConnectReturnCode::Success => {
                Ok(Some(Accepted {
                    session_present: c.session_present,
                    receive_max: None,
                    max_packet_size: None,
                    server_keep_alive: None,
                }))
            }
            Ok(p4::Packet::ConnAck(c)) => {
                Err(format!("the broker refused the connection: {:?}", c.code))
            }
            Ok(other) => Err(format!("expected CONNACK, received {other:?}")),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        },
        MqttVersion::V5 => match p5::Packet::read(rbuf, Some(MAX_PACKET)) {
            Ok(p5::Packet::ConnAck(c)) if c.code == p5::ConnectReturnCode::Success => {
                let props = c.properties.as_ref();
                Ok(Some(Accepted {
                    session_present: c.session_present,
                    receive_max: props.and_then(|p| p.receive_max),
                    max_packet_size: props.and_then(|p| p.max_packet_size),
                    server_keep_alive: props.and_then(|p| p.server_keep_alive),
                }))
            }
            Ok(p5::Packet::ConnAck(c)) => {
                Err(format!("the broker refused the connection: {:?}", c.code))
            }
            Ok(other) => Err(format!("expected CONNACK, received {other:?}")),
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// MQTT's variable byte integer.
fn put_varint(buf: &mut BytesMut, mut n: usize) {
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

fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s);
}

impl Connection {
    /// True while connected.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    /// A free packet id, marked with `state`.
    fn take_pkid(&mut self, state: Out) -> u16 {
        loop {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if self.out[usize::from(id)] == Out::Free {
                self.out[usize::from(id)] = state;
                return id;
            }
        }
    }

    fn free_pkid(&mut self, pkid: u16, expected: Out) -> bool {
        let slot = &mut self.out[usize::from(pkid)];
        if *slot == expected {
            *slot = Out::Free;
            if expected != Out::Sub {
                self.inflight -= 1;
            }
            true
        } else {
            false
        }
    }

    /// Encodes a PUBLISH to be written at the next poll; returns its packet
    /// id (0 for QoS 0).
    pub(crate) fn publish(
        &mut self,
        topic: &str,
        qos: Qos,
        retain: bool,
        payload: &[u8],
        content_type: Option<&str>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<u16, PublishError> {
        if !valid_topic_name(topic) {
            return Err(PublishError::Invalid(format!(
                "`{topic}` is not a valid MQTT topic name"
            )));
        }
        if topic.len() > usize::from(u16::MAX) {
            return Err(PublishError::Invalid("the topic name is too long".into()));
        }
        // Properties (MQTT 5): content type, then user properties.
        let mut properties_len = 0usize;
        match self.params.version {
            MqttVersion::V311 => {
                if !headers.is_empty() {
                    return Err(PublishError::Invalid(
                        "MQTT 3.1.1 cannot carry headers (CloudEvents binary mode); use structured mode or MQTT 5".into(),
                    ));
                }
            }
            MqttVersion::V5 => {
                if let Some(ct) = content_type {
                    properties_len += 1 + 2 + ct.len();
                }
                for (name, value) in headers {
                    if std::str::from_utf8(value).is_err() {
                        return Err(PublishError::Invalid(format!(
                            "header `{name}` is not UTF-8; MQTT 5 user properties are text"
                        )));
                    }
                    if name.len() > usize::from(u16::MAX) || value.len() > usize::from(u16::MAX) {
                        return Err(PublishError::Invalid(format!(
                            "header `{name}` is too long for an MQTT 5 user property"
                        )));
                    }
                    properties_len += 1 + 2 + name.len() + 2 + value.len();
                }
            }
        }
        if !self.is_connected()
            || (qos != Qos::AtMostOnce && self.inflight >= self.limit)
            || self.wbuf.len() >= WRITE_HIGH_WATER
        {
            if self.wbuf.len() >= WRITE_HIGH_WATER {
                self.report_flush = true;
            }
            return Err(PublishError::Full);
        }
        let mut remaining = 2 + topic.len() + payload.len();
        if qos != Qos::AtMostOnce {
            remaining += 2;
        }
        if self.params.version == MqttVersion::V5 {
            remaining += varint_len(properties_len) + properties_len;
        }
        let size = 1 + varint_len(remaining) + remaining;
        if size > self.max_outgoing as usize || remaining > 268_435_455 {
            return Err(PublishError::Invalid(format!(
                "the message ({size} bytes) exceeds the broker's maximum packet size ({} bytes)",
                self.max_outgoing
            )));
        }
        let (level, pkid) = match qos {
            Qos::AtMostOnce => (0u8, 0u16),
            Qos::AtLeastOnce => (1, self.take_pkid(Out::Ack)),
            Qos::ExactlyOnce => (2, self.take_pkid(Out::Rec)),
        };
        let b = &mut self.wbuf;
        b.reserve(size);
        b.put_u8(0x30 | (level << 1) | u8::from(retain));
        put_varint(b, remaining);
        put_str(b, topic.as_bytes());
        if level > 0 {
            b.put_u16(pkid);
            self.inflight += 1;
        } else {
            self.qos0_buffered += 1;
        }
        if self.params.version == MqttVersion::V5 {
            put_varint(b, properties_len);
            if let Some(ct) = content_type {
                b.put_u8(0x03);
                put_str(b, ct.as_bytes());
            }
            for (name, value) in headers {
                b.put_u8(0x26);
                put_str(b, name.as_bytes());
                put_str(b, value);
            }
        }
        b.put_slice(payload);
        Ok(pkid)
    }

    /// Acknowledges an incoming QoS 1 (PUBACK) or QoS 2 (PUBREC) message,
    /// written at the next poll. Ignored while disconnected (the broker
    /// resends what we did not acknowledge).
    pub(crate) fn ack(&mut self, qos: u8, pkid: u16) {
        if !self.is_connected() {
            return;
        }
        match qos {
            1 => self.put_ack(0x40, pkid),
            2 => self.put_ack(0x50, pkid),
            _ => {}
        }
    }

    /// A two-byte acknowledgement packet (PUBACK, PUBREC, PUBREL, PUBCOMP):
    /// MQTT 5 allows leaving out a success reason code and the properties.
    fn put_ack(&mut self, byte1: u8, pkid: u16) {
        self.wbuf.put_u8(byte1);
        self.wbuf.put_u8(2);
        self.wbuf.put_u16(pkid);
    }

    /// Subscribes to `filters`, written at the next poll.
    pub(crate) fn subscribe(&mut self, filters: &[String], qos: Qos) -> Result<(), TransportError> {
        if !self.is_connected() {
            return Err(TransportError::Client {
                broker: "mqtt",
                reason: "not connected".into(),
            });
        }
        let pkid = self.take_pkid(Out::Sub);
        let result = match self.params.version {
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
                    .write(&mut self.wbuf, self.max_outgoing as usize)
                    .map_err(|e| e.to_string())
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
                    .write(&mut self.wbuf, Some(self.max_outgoing))
                    .map_err(|e| e.to_string())
            }
        };
        result.map(|_| ()).map_err(|e| {
            self.out[usize::from(pkid)] = Out::Free;
            TransportError::Client {
                broker: "mqtt",
                reason: format!("cannot subscribe to {filters:?}: {e}"),
            }
        })
    }

    /// Sends DISCONNECT at the next poll.
    pub(crate) fn disconnect(&mut self) {
        if self.is_connected() {
            self.wbuf.put_u8(0xE0);
            self.wbuf.put_u8(0);
        }
    }

    /// Forgets the connection and everything in flight on it.
    fn reset(&mut self) {
        self.link = Link::Down;
        self.wbuf = BytesMut::new();
        self.rbuf = BytesMut::new();
        self.unflushed = false;
        self.events.clear();
        self.out.fill(Out::Free);
        self.inflight = 0;
        self.qos0_buffered = 0;
        self.report_flush = false;
        self.ping_outstanding = false;
    }

    fn connected(&mut self, stream: Stream, rest: BytesMut, accepted: Accepted) -> Ev {
        self.link = Link::Up(stream);
        self.rbuf = rest;
        self.limit = match accepted.receive_max {
            Some(max) if max > 0 => self.configured_limit.min(usize::from(max)),
            _ => self.configured_limit,
        };
        self.max_outgoing = accepted
            .max_packet_size
            .unwrap_or(MAX_PACKET)
            .min(MAX_PACKET);
        self.keep_alive = match accepted.server_keep_alive {
            Some(s) if s > 0 => Duration::from_secs(u64::from(s)),
            _ => self.params.keep_alive,
        };
        self.ping.as_mut().reset(Instant::now() + self.keep_alive);
        Ev::Connected {
            session_present: accepted.session_present,
        }
    }

    /// The next event. An error means the connection is down (polling again
    /// reconnects). Cancel-safe.
    pub(crate) async fn poll(&mut self) -> Result<Ev, String> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Ev, String>> {
        if let Some(ev) = self.events.pop_front() {
            return Poll::Ready(Ok(ev));
        }
        if matches!(self.link, Link::Down) {
            self.link = Link::Connecting(Box::pin(connect(self.params.clone())));
        }
        if let Link::Connecting(attempt) = &mut self.link {
            return match attempt.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.reset();
                    Poll::Ready(Err(e))
                }
                Poll::Ready(Ok((stream, rest, accepted))) => {
                    let connected = self.connected(stream, rest, accepted);
                    // What came right after the CONNACK (a resumed session's
                    // messages) is reported after the connection.
                    match self.decode() {
                        Ok(()) => Poll::Ready(Ok(connected)),
                        Err(e) => {
                            self.reset();
                            Poll::Ready(Err(e))
                        }
                    }
                }
            };
        }
        match self.drive(cx) {
            Err(e) => {
                self.reset();
                Poll::Ready(Err(e))
            }
            Ok(()) => match self.events.pop_front() {
                Some(ev) => Poll::Ready(Ok(ev)),
                None => Poll::Pending,
            },
        }
    }

    /// Writes what is waiting, reads and decodes until there is an event
    /// or nothing more to do.
    fn drive(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        let Link::Up(mut stream) = std::mem::replace(&mut self.link, Link::Down) else {
            return Ok(());
        };
        let result = self.drive_stream(&mut stream, cx);
        self.link = Link::Up(stream);
        result
    }

    fn drive_stream(&mut self, stream: &mut Stream, cx: &mut Context<'_>) -> Result<(), String> {
        loop {
            // Keep-alive, whatever the traffic.
            if self.ping.as_mut().poll(cx).is_ready() {
                if self.ping_outstanding {
                    return Err("the broker did not answer a PINGREQ".into());
                }
                self.wbuf.put_u8(0xC0);
                self.wbuf.put_u8(0);
                self.ping_outstanding = true;
                let next = Instant::now() + self.keep_alive;
                self.ping.as_mut().reset(next);
            }
            // Write everything encoded since the last poll.
            let had_data = !self.wbuf.is_empty();
            while !self.wbuf.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, &self.wbuf) {
                    Poll::Ready(Ok(0)) => return Err("the connection closed while writing".into()),
                    Poll::Ready(Ok(n)) => {
                        self.wbuf.advance(n);
                        self.unflushed = true;
                    }
                    Poll::Ready(Err(e)) => return Err(io_error(e)),
                    Poll::Pending => break,
                }
            }
            if self.wbuf.is_empty() && self.unflushed {
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(e)) => return Err(io_error(e)),
                    Poll::Pending => {}
                }
            }
            if had_data && self.wbuf.is_empty() {
                if self.wbuf.capacity() > 2 * WRITE_HIGH_WATER {
                    self.wbuf = BytesMut::new();
                }
                if self.qos0_buffered > 0 || self.report_flush {
                    self.events.push_back(Ev::Flushed {
                        qos0: self.qos0_buffered,
                    });
                    self.qos0_buffered = 0;
                    self.report_flush = false;
                }
            }
            // Read and decode what arrived.
            let mut buf = ReadBuf::new(&mut self.scratch);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    return Err("the broker closed the connection".into());
                }
                Poll::Ready(Ok(())) => {
                    self.rbuf.extend_from_slice(buf.filled());
                    self.decode()?;
                    if self.events.is_empty() {
                        // Nothing for the owner (a PINGRESP, part of a
                        // packet, acknowledgements to write): go round.
                        continue;
                    }
                    return Ok(());
                }
                Poll::Ready(Err(e)) => return Err(io_error(e)),
                Poll::Pending => {}
            }
            // Nothing to read; the write (if any is left) and the read
            // registered for wake-up, and so did the keep-alive timer.
            return Ok(());
        }
    }

    /// Decodes every complete packet in `rbuf`.
    fn decode(&mut self) -> Result<(), String> {
        loop {
            if self.rbuf.is_empty() {
                return Ok(());
            }
            let done = match self.params.version {
                MqttVersion::V311 => match p4::Packet::read(&mut self.rbuf, MAX_PACKET as usize) {
                    Ok(packet) => {
                        self.handle4(packet)?;
                        false
                    }
                    Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => true,
                    Err(e) => return Err(format!("malformed packet from the broker: {e}")),
                },
                MqttVersion::V5 => match p5::Packet::read(&mut self.rbuf, Some(MAX_PACKET)) {
                    Ok(packet) => {
                        self.handle5(packet)?;
                        false
                    }
                    Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => true,
                    Err(e) => return Err(format!("malformed packet from the broker: {e}")),
                },
            };
            if done {
                return Ok(());
            }
        }
    }

    fn incoming_publish(&mut self, incoming: Incoming) {
        if !self.manual_acks {
            match incoming.qos {
                1 => self.put_ack(0x40, incoming.pkid),
                2 => self.put_ack(0x50, incoming.pkid),
                _ => {}
            }
        }
        self.events.push_back(Ev::Publish(incoming));
    }

    fn pubrec(&mut self, pkid: u16, error: Option<String>) {
        if self.out[usize::from(pkid)] != Out::Rec {
            return;
        }
        if error.is_some() {
            self.free_pkid(pkid, Out::Rec);
        } else {
            self.out[usize::from(pkid)] = Out::Comp;
            self.put_ack(0x62, pkid);
        }
        self.events.push_back(Ev::Received { pkid, error });
    }

    fn puback(&mut self, pkid: u16, error: Option<String>) {
        if self.free_pkid(pkid, Out::Ack) {
            self.events.push_back(Ev::Acked { pkid, error });
        }
    }

    fn pubcomp(&mut self, pkid: u16) {
        if self.free_pkid(pkid, Out::Comp) {
            self.events.push_back(Ev::Completed { pkid });
        }
    }

    fn suback(&mut self, pkid: u16, refused: usize) {
        if self.free_pkid(pkid, Out::Sub) {
            self.events.push_back(Ev::Subscribed { refused });
        }
    }

    fn handle4(&mut self, packet: p4::Packet) -> Result<(), String> {
        match packet {
            p4::Packet::Publish(p) => self.incoming_publish(Incoming {
                topic: p.topic,
                payload: p.payload.to_vec(),
                qos: p.qos as u8,
                pkid: p.pkid,
                content_type: None,
                user_properties: Vec::new(),
            }),
            p4::Packet::PubAck(a) => self.puback(a.pkid, None),
            p4::Packet::PubRec(r) => self.pubrec(r.pkid, None),
            p4::Packet::PubComp(c) => self.pubcomp(c.pkid),
            p4::Packet::PubRel(r) => self.put_ack(0x70, r.pkid),
            p4::Packet::SubAck(s) => {
                let refused = s
                    .return_codes
                    .iter()
                    .filter(|c| matches!(c, p4::SubscribeReasonCode::Failure))
                    .count();
                self.suback(s.pkid, refused);
            }
            p4::Packet::PingResp => self.ping_outstanding = false,
            p4::Packet::Disconnect => return Err("the broker disconnected us".into()),
            _ => {}
        }
        Ok(())
    }

    fn handle5(&mut self, packet: p5::Packet) -> Result<(), String> {
        match packet {
            p5::Packet::Publish(p) => {
                let (content_type, user_properties) = match p.properties {
                    Some(props) => (props.content_type, props.user_properties),
                    None => (None, Vec::new()),
                };
                let topic = match String::from_utf8(p.topic.to_vec()) {
                    Ok(t) => t,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                self.incoming_publish(Incoming {
                    topic,
                    payload: p.payload.to_vec(),
                    qos: p.qos as u8,
                    pkid: p.pkid,
                    content_type,
                    user_properties,
                });
            }
            p5::Packet::PubAck(a) => {
                let error = match a.reason {
                    p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers => None,
                    other => Some(format!("broker refused the message: {other:?}")),
                };
                self.puback(a.pkid, error);
            }
            p5::Packet::PubRec(r) => {
                let error = match r.reason {
                    p5::PubRecReason::Success | p5::PubRecReason::NoMatchingSubscribers => None,
                    other => Some(format!("broker refused the message: {other:?}")),
                };
                self.pubrec(r.pkid, error);
            }
            p5::Packet::PubComp(c) => self.pubcomp(c.pkid),
            p5::Packet::PubRel(r) => self.put_ack(0x70, r.pkid),
            p5::Packet::SubAck(s) => {
                let refused = s
                    .return_codes
                    .iter()
                    .filter(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                    .count();
                self.suback(s.pkid, refused);
            }
            p5::Packet::PingResp(_) => self.ping_outstanding = false,
            p5::Packet::Disconnect(d) => {
                return Err(format!("the broker disconnected us: {:?}", d.reason_code));
            }
            _ => {}
        }
        Ok(())
    }
}

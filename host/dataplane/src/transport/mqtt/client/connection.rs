//! The connection's I/O loop: write everything encoded since the last poll
//! in as few writes as possible, read and decode, answer what the protocol
//! answers by itself (PUBREL, PUBCOMP, automatic acknowledgements), keep
//! the connection alive, and report the rest as [`Ev`]s.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::bytes::{Buf, BytesMut};

use super::codec::{self, Accepted, Inbound, OutgoingPublish};
use super::dial::{self, Connected, Params, READ_CHUNK, Stream};
use super::inflight::{Inflight, PubRecOutcome};
use super::packet::{MAX_PACKET, first_byte, put_ack, put_empty};
use super::{ConnectionError, Ev, Incoming, InvalidPublish, PublishError, Qos};
use crate::transport::TransportError;

/// Encoded bytes waiting to be written beyond which [`Connection::publish`]
/// says `Full` (the owner polls, which writes them, and tries again).
pub(super) const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// The keep-alive timer before the first connection (reset on CONNACK).
const IDLE_TIMER: Duration = Duration::from_secs(3600);

enum Link {
    Down,
    Connecting(BoxFuture<'static, Result<Connected, ConnectionError>>),
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
    inflight: Inflight,
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

impl Connection {
    /// A connection that connects when first polled; `inflight` publishes
    /// at most in flight.
    pub(super) fn new(params: Params, manual_acks: bool, inflight: u16) -> Connection {
        Connection {
            keep_alive: params.keep_alive,
            params: Arc::new(params),
            manual_acks,
            link: Link::Down,
            wbuf: BytesMut::new(),
            unflushed: false,
            rbuf: BytesMut::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            events: VecDeque::new(),
            inflight: Inflight::new(inflight),
            max_outgoing: MAX_PACKET,
            qos0_buffered: 0,
            report_flush: false,
            ping: Box::pin(tokio::time::sleep(IDLE_TIMER)),
            ping_outstanding: false,
        }
    }

    /// True while connected.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.link, Link::Up(_))
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
        let message = OutgoingPublish {
            topic,
            qos,
            retain,
            payload,
            content_type,
            headers,
        };
        let version = self.params.version;
        let layout = message.layout(version).map_err(PublishError::Invalid)?;
        if !self.is_connected()
            || (qos != Qos::AtMostOnce && !self.inflight.has_room())
            || self.wbuf.len() >= WRITE_HIGH_WATER
        {
            if self.wbuf.len() >= WRITE_HIGH_WATER {
                self.report_flush = true;
            }
            return Err(PublishError::Full);
        }
        if layout.size > self.max_outgoing as usize {
            let size = layout.size;
            return Err(PublishError::Invalid(InvalidPublish::TooLarge {
                size,
                max: self.max_outgoing,
            }));
        }
        let pkid = match qos {
            Qos::AtMostOnce => 0,
            // No free id (every one awaits an acknowledgement): as full.
            Qos::AtLeastOnce => self
                .inflight
                .start_publish(false)
                .ok_or(PublishError::Full)?,
            Qos::ExactlyOnce => self
                .inflight
                .start_publish(true)
                .ok_or(PublishError::Full)?,
        };
        if qos == Qos::AtMostOnce {
            self.qos0_buffered += 1;
        }
        message.write(version, &layout, pkid, &mut self.wbuf);
        Ok(pkid)
    }

    /// Acknowledges an incoming QoS 1 (PUBACK) or QoS 2 (PUBREC) message,
    /// written at the next poll. Ignored while disconnected (the broker
    /// resends what we did not acknowledge).
    pub(crate) fn ack(&mut self, qos: u8, pkid: u16) {
        if self.is_connected() {
            self.put_incoming_ack(qos, pkid);
        }
    }

    fn put_incoming_ack(&mut self, qos: u8, pkid: u16) {
        match qos {
            1 => put_ack(&mut self.wbuf, first_byte::PUBACK, pkid),
            2 => put_ack(&mut self.wbuf, first_byte::PUBREC, pkid),
            _ => {}
        }
    }

    /// Subscribes to `filters`, written at the next poll.
    pub(crate) fn subscribe(&mut self, filters: &[String], qos: Qos) -> Result<(), TransportError> {
        let refuse = |reason: String| TransportError::Client {
            broker: "mqtt",
            reason,
        };
        if !self.is_connected() {
            return Err(refuse("not connected".into()));
        }
        let Some(pkid) = self.inflight.start_subscribe() else {
            return Err(refuse("no packet id free for SUBSCRIBE".into()));
        };
        codec::write_subscribe(
            self.params.version,
            pkid,
            filters,
            qos,
            self.max_outgoing,
            &mut self.wbuf,
        )
        .map_err(|e| {
            self.inflight.cancel_subscribe(pkid);
            refuse(format!("cannot subscribe to {filters:?}: {e}"))
        })
    }

    /// Sends DISCONNECT at the next poll.
    pub(crate) fn disconnect(&mut self) {
        if self.is_connected() {
            put_empty(&mut self.wbuf, first_byte::DISCONNECT);
        }
    }

    /// Forgets the connection and everything in flight on it.
    fn reset(&mut self) {
        self.link = Link::Down;
        self.wbuf = BytesMut::new();
        self.rbuf = BytesMut::new();
        self.unflushed = false;
        self.events.clear();
        self.inflight.clear();
        self.qos0_buffered = 0;
        self.report_flush = false;
        self.ping_outstanding = false;
    }

    fn connected(&mut self, stream: Stream, rest: BytesMut, accepted: Accepted) -> Ev {
        self.link = Link::Up(stream);
        self.rbuf = rest;
        self.inflight.connected(accepted.receive_max);
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
    pub(crate) async fn poll(&mut self) -> Result<Ev, ConnectionError> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Ev, ConnectionError>> {
        if let Some(ev) = self.events.pop_front() {
            return Poll::Ready(Ok(ev));
        }
        if matches!(self.link, Link::Down) {
            self.link = Link::Connecting(Box::pin(dial::connect(self.params.clone())));
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
    fn drive(&mut self, cx: &mut Context<'_>) -> Result<(), ConnectionError> {
        let Link::Up(mut stream) = std::mem::replace(&mut self.link, Link::Down) else {
            return Ok(());
        };
        let result = self.drive_stream(&mut stream, cx);
        self.link = Link::Up(stream);
        result
    }

    fn drive_stream(
        &mut self,
        stream: &mut Stream,
        cx: &mut Context<'_>,
    ) -> Result<(), ConnectionError> {
        loop {
            // Keep-alive, whatever the traffic. A ping still unanswered when
            // the next is due is judged only once everything that arrived is
            // read (below): its PINGRESP may be waiting in the socket while
            // the owner was busy.
            let ping_due = self.ping.as_mut().poll(cx).is_ready();
            let ping_overdue = ping_due && self.ping_outstanding;
            if ping_due && !ping_overdue {
                put_empty(&mut self.wbuf, first_byte::PINGREQ);
                self.ping_outstanding = true;
                let next = Instant::now() + self.keep_alive;
                self.ping.as_mut().reset(next);
            }
            // Write everything encoded since the last poll.
            let had_data = !self.wbuf.is_empty();
            while !self.wbuf.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, &self.wbuf) {
                    Poll::Ready(Ok(0)) => return Err(ConnectionError::ClosedWhileWriting),
                    Poll::Ready(Ok(n)) => {
                        self.wbuf.advance(n);
                        self.unflushed = true;
                    }
                    Poll::Ready(Err(e)) => return Err(e.into()),
                    Poll::Pending => break,
                }
            }
            if self.wbuf.is_empty() && self.unflushed {
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(e)) => return Err(e.into()),
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
                    return Err(ConnectionError::Closed);
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
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => {}
            }
            if ping_overdue && self.ping_outstanding {
                return Err(ConnectionError::NoPingResp);
            }
            // Nothing to read; the write (if any is left) and the read
            // registered for wake-up, and so did the keep-alive timer.
            return Ok(());
        }
    }

    /// Decodes and handles every complete packet in `rbuf`.
    fn decode(&mut self) -> Result<(), ConnectionError> {
        while let Some(packet) = codec::decode(self.params.version, &mut self.rbuf)? {
            self.handle(packet)?;
        }
        Ok(())
    }

    fn handle(&mut self, packet: Inbound) -> Result<(), ConnectionError> {
        match packet {
            Inbound::Publish(incoming) => self.incoming_publish(incoming),
            Inbound::PubAck { pkid, error } => {
                if self.inflight.puback(pkid) {
                    self.events.push_back(Ev::Acked { pkid, error });
                }
            }
            Inbound::PubRec { pkid, error } => {
                match self.inflight.pubrec(pkid, error.is_some()) {
                    PubRecOutcome::Unknown => return Ok(()),
                    PubRecOutcome::Refused => {}
                    PubRecOutcome::Release => put_ack(&mut self.wbuf, first_byte::PUBREL, pkid),
                }
                self.events.push_back(Ev::Received { pkid, error });
            }
            Inbound::PubComp { pkid } => {
                if self.inflight.pubcomp(pkid) {
                    self.events.push_back(Ev::Completed { pkid });
                }
            }
            // The broker releases a QoS 2 message it sent us: complete it.
            Inbound::PubRel { pkid } => put_ack(&mut self.wbuf, first_byte::PUBCOMP, pkid),
            Inbound::SubAck { pkid, refused } => {
                if self.inflight.suback(pkid) {
                    self.events.push_back(Ev::Subscribed { refused });
                }
            }
            Inbound::PingResp => self.ping_outstanding = false,
            Inbound::Disconnect(reason) => return Err(ConnectionError::Disconnected(reason)),
            // A second CONNACK: nothing to do.
            Inbound::ConnAck(_) => {}
            Inbound::Ignored(what) => tracing::trace!("mqtt: ignored {what} from the broker"),
        }
        Ok(())
    }

    fn incoming_publish(&mut self, incoming: Incoming) {
        if !self.manual_acks {
            self.put_incoming_ack(incoming.qos, incoming.pkid);
        }
        self.events.push_back(Ev::Publish(incoming));
    }
}

#[cfg(test)]
mod tests;

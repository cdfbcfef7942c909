//! The server side of RELAY (docs/fnap.md 5.16): after `220 RELAY`, the
//! copy flow's events go out in chunks, at most `window` of them waiting
//! for the client's `ACK`; each chunk is acknowledged at this host's broker
//! only once acknowledged by the client, so a session that breaks leaves
//! its unacknowledged events to the next one. The relay ends with the
//! client's `DONE`, the subscription's end (`550`, within
//! [`REVOCATION_CHECK`]), a failure of the reader, or the server's
//! shutdown.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::session::write_within;
use crate::fnap::cmd::relay::Relay;
use crate::fnap::relay::{ClientLine, PING_INTERVAL_SECS, ServerLine};
use crate::fnap::reply::fixed;
use crate::fnap::{Line, LineReader, Reply, ReplyCode};
use crate::provision::ProvisionError;
use crate::service::{Principal, ServiceError};

/// How often the relay checks that its subscription still stands.
pub(super) const REVOCATION_CHECK: Duration = Duration::from_millis(200);

/// How a relay ended: the session goes on with commands, or closes.
pub(super) enum Ended {
    Commands,
    Close,
}

/// The connection of a relay session.
pub(super) struct Connection<'s, S> {
    pub(super) stream: &'s mut S,
    pub(super) reader: &'s mut LineReader,
    pub(super) shutdown: &'s CancellationToken,
}

/// Serves `request` until the relay ends.
pub(super) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    mut connection: Connection<'_, S>,
    principal: Principal,
    request: Relay,
) -> std::io::Result<Ended> {
    let service = &shared.service;
    let timeout = shared.config.command_timeout();
    let opened = tokio::time::timeout(timeout, service.relay_copy(&principal, &request.copy));
    let feed = match opened.await {
        Ok(Ok(feed)) => feed,
        Ok(Err(error)) => {
            connection.send(shared, &Reply::from(&error)).await?;
            return Ok(Ended::Commands);
        }
        Err(_) => {
            connection.send(shared, &fixed::command_timeout()).await?;
            return Ok(Ended::Commands);
        }
    };
    if tokio::time::timeout(timeout, feed.ready).await.is_err() {
        let error = ServiceError::Provisioning(format!(
            "the broker of {} does not answer; try again later",
            request.copy
        ));
        connection.send(shared, &Reply::from(&error)).await?;
        return Ok(Ended::Commands);
    }
    tracing::info!(copy = %request.copy, window = request.window, "relay started");
    let started = Reply::new(
        ReplyCode::Ok,
        format!("RELAY {} window={}", request.copy, request.window),
    );
    connection.send(shared, &started).await?;
    let mut relay = RelayState {
        chunks: feed.chunks,
        in_flight: VecDeque::new(),
        next_seq: 1,
        window: request.window as usize,
        last_sent: Instant::now(),
    };
    let ended = relay.run(shared, &mut connection, &request).await;
    drop(feed.guard);
    tracing::info!(copy = %request.copy, "relay ended");
    ended
}

/// A relay running.
struct RelayState {
    chunks: tokio::sync::mpsc::Receiver<crate::provision::CopyChunk>,
    /// Chunks sent and not acknowledged yet, oldest first.
    in_flight: VecDeque<(u64, BoxFuture<'static, Result<(), ProvisionError>>)>,
    next_seq: u64,
    window: usize,
    last_sent: Instant,
}

/// What to do after a client line.
enum Step {
    Continue,
    End(Ended),
}

impl RelayState {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        shared: &Shared,
        connection: &mut Connection<'_, S>,
        request: &Relay,
    ) -> std::io::Result<Ended> {
        let mut check = tokio::time::interval(REVOCATION_CHECK);
        let mut buffer = [0u8; 4096];
        loop {
            let room = self.in_flight.len() < self.window;
            tokio::select! {
                biased;
                () = connection.shutdown.cancelled() => {
                    connection.send(shared, &fixed::shutting_down(&shared.config.hostname)).await?;
                    return Ok(Ended::Close);
                }
                read = connection.stream.read(&mut buffer) => {
                    let count = read?;
                    if count == 0 {
                        return Ok(Ended::Close);
                    }
                    connection.reader.push(&buffer[..count]);
                    while let Some(line) = connection.reader.next_line() {
                        if let Step::End(ended) = self.client_line(shared, connection, line).await? {
                            return Ok(ended);
                        }
                    }
                }
                chunk = self.chunks.recv(), if room => {
                    let Some(chunk) = chunk else {
                        let error = ServiceError::Provisioning(format!("reading copy flow {} failed; RELAY again", request.copy));
                        connection.send(shared, &Reply::from(&error)).await?;
                        return Ok(Ended::Commands);
                    };
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let mut bytes = ServerLine::Events { seq, count: chunk.events.len() }.encode().into_bytes();
                    for event in &chunk.events {
                        bytes.extend_from_slice(event.as_bytes());
                        bytes.extend_from_slice(b"\r\n");
                    }
                    connection.write(shared, &bytes).await?;
                    self.in_flight.push_back((seq, chunk.ack));
                    self.last_sent = Instant::now();
                }
                _ = check.tick() => {
                    match shared.service.relay_goes_on(&request.copy).await {
                        Ok(true) => {}
                        Ok(false) => {
                            let ended = Reply::new(ReplyCode::NotFound, format!("subscription {} ended by the publisher", request.copy));
                            connection.send(shared, &ended).await?;
                            return Ok(Ended::Commands);
                        }
                        Err(error) => tracing::warn!(copy = %request.copy, %error, "cannot check a relayed subscription"),
                    }
                    if self.last_sent.elapsed() >= Duration::from_secs(PING_INTERVAL_SECS) {
                        connection.write(shared, ServerLine::Ping.encode().as_bytes()).await?;
                        self.last_sent = Instant::now();
                    }
                }
            }
        }
    }

    async fn client_line<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        shared: &Shared,
        connection: &mut Connection<'_, S>,
        line: Line,
    ) -> std::io::Result<Step> {
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong => {
                connection
                    .send(shared, &fixed::line_too_long(shared.config.max_line_length))
                    .await?;
                return Ok(Step::End(Ended::Commands));
            }
            Line::Invalid => {
                connection.send(shared, &fixed::invalid_line()).await?;
                return Ok(Step::End(Ended::Commands));
            }
        };
        match ClientLine::parse(&text) {
            Ok(ClientLine::Done) => {
                let done = Reply::ok(format!(
                    "OK relay ended, {} chunks not acknowledged",
                    self.in_flight.len()
                ));
                connection.send(shared, &done).await?;
                Ok(Step::End(Ended::Commands))
            }
            Ok(ClientLine::Ack(seq)) if seq < self.next_seq => {
                while self.in_flight.front().is_some_and(|(s, _)| *s <= seq) {
                    let Some((_, ack)) = self.in_flight.pop_front() else {
                        break;
                    };
                    if let Err(error) = ack.await {
                        tracing::warn!(%error, "cannot acknowledge relayed events at the broker");
                        let error = ServiceError::Provisioning(format!(
                            "acknowledging relayed events failed: {error}; RELAY again"
                        ));
                        connection.send(shared, &Reply::from(&error)).await?;
                        return Ok(Step::End(Ended::Commands));
                    }
                }
                Ok(Step::Continue)
            }
            Ok(ClientLine::Ack(seq)) => {
                let error = ServiceError::InvalidArgument(format!(
                    "ACK {seq}: only chunks up to {} were sent",
                    self.next_seq - 1
                ));
                connection.send(shared, &Reply::from(&error)).await?;
                Ok(Step::End(Ended::Commands))
            }
            Err(error) => {
                let error = ServiceError::InvalidArgument(error.to_string());
                connection.send(shared, &Reply::from(&error)).await?;
                Ok(Step::End(Ended::Commands))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    async fn send(&mut self, shared: &Shared, reply: &Reply) -> std::io::Result<()> {
        self.write(shared, &reply.encode()).await
    }

    async fn write(&mut self, shared: &Shared, bytes: &[u8]) -> std::io::Result<()> {
        write_within(self.stream, bytes, shared.config.idle_timeout()).await
    }
}

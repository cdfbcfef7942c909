//! The client side of RELAY (docs/fnap.md 5.16): what a subscriber's FNAA
//! uses to receive a copy flow's events over the session.

use std::time::Duration;

use super::{Client, ClientError, parse_reply_line};
use crate::fnap::relay::{ClientLine, MAX_EVENT_LINE, PING_INTERVAL_SECS, ServerLine};

/// How long a relay may stay silent (no chunk, no `PING`) before the
/// client takes the session as dead.
pub const RELAY_SILENCE: Duration = Duration::from_secs(3 * PING_INTERVAL_SECS);

impl Client {
    /// Sends `RELAY <copy> WINDOW <window>` and waits for `220 RELAY`;
    /// from then on the session carries [`Client::relay_line`]s.
    pub async fn start_relay(&mut self, copy: &str, window: u32) -> Result<(), ClientError> {
        // Event lines may follow the reply in the same read: the reader
        // must take them whole from the start.
        self.reader.set_max_length(MAX_EVENT_LINE);
        let response = self
            .command(&format!("RELAY {copy} WINDOW {window}"))
            .await?;
        if response.code != 220 || !response.text.starts_with("RELAY") {
            return Err(ClientError::Protocol(format!(
                "expected `220 RELAY`, got `{} {}`",
                response.code, response.text
            )));
        }
        Ok(())
    }

    /// The next line of a relay: a chunk's header, `PING` or the reply
    /// that ends the relay. Cancel-safe.
    pub async fn relay_line(&mut self) -> Result<ServerLine, ClientError> {
        let line = match self.read_line_within(RELAY_SILENCE).await {
            Err(ClientError::Timeout) => {
                return Err(ClientError::Protocol(format!(
                    "the relay was silent for {} s",
                    RELAY_SILENCE.as_secs()
                )));
            }
            other => other?,
        };
        ServerLine::parse(&line).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// The next event line of a chunk (one CloudEvent in JSON). Cancel-safe.
    pub async fn relay_event(&mut self) -> Result<String, ClientError> {
        let line = self.read_line_within(RELAY_SILENCE).await?;
        if parse_reply_line(&line).is_ok() {
            return Err(ClientError::Protocol(format!(
                "a reply inside a chunk: {line}"
            )));
        }
        Ok(line)
    }

    /// Tells the server that every chunk up to `seq` is safe here.
    pub async fn relay_ack(&mut self, seq: u64) -> Result<(), ClientError> {
        self.write_line(ClientLine::Ack(seq).encode().trim_end())
            .await
    }

    /// Ends the relay; the session goes back to commands.
    pub async fn end_relay(&mut self) -> Result<(), ClientError> {
        self.write_line(ClientLine::Done.encode().trim_end())
            .await?;
        loop {
            match self.relay_line().await? {
                ServerLine::Reply { code, .. } if code < 400 => return Ok(()),
                ServerLine::Reply { code, text } => {
                    return Err(ClientError::Rejected { code, text });
                }
                ServerLine::Ping => {}
                ServerLine::Events { count, .. } => {
                    for _ in 0..count {
                        self.relay_event().await?;
                    }
                }
            }
        }
    }
}

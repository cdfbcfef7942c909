//! The lines of a relay (docs/fnap.md 5.16), without I/O. After `220
//! RELAY`, the server sends chunks, each an `EVENTS <seq> <count>` line
//! followed by `<count>` lines of one CloudEvent each (JSON format, RFC
//! 8259 compact: one line), and `PING` while it has nothing to send; the
//! client answers `ACK <seq>` once everything up to chunk `<seq>` is safe
//! on its side, and ends with `DONE`. A reply line (`<code> <text>`) ends
//! the relay.

/// Chunks the server sends before it waits for an ACK, unless the client
/// asks for another window.
pub const DEFAULT_WINDOW: u32 = 8;
/// The largest window a client may ask for.
pub const MAX_WINDOW: u32 = 64;
/// The most events in one chunk.
pub const MAX_CHUNK_EVENTS: usize = 1_000;
/// The longest event line, in octets (CRLF excluded).
pub const MAX_EVENT_LINE: usize = 1024 * 1024;
/// How often an idle server sends `PING`, in seconds; a client that has
/// heard nothing for three times as long may take the session as dead.
pub const PING_INTERVAL_SECS: u64 = 5;

/// A line the server sends during a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// A chunk of `count` event lines follows.
    Events { seq: u64, count: usize },
    /// Nothing to send for now; the session is alive.
    Ping,
    /// The relay ended (`220` after DONE; `550` the subscription ended;
    /// `421` the server shuts down; `451` a local failure).
    Reply { code: u16, text: String },
}

/// A line the client sends during a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLine {
    /// Every chunk up to `seq` is safe at the client.
    Ack(u64),
    /// Ends the relay; the session goes back to commands.
    Done,
}

/// Why a relay line is not what the protocol allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayLineError {
    #[error("expected `EVENTS <seq> <count>`, `PING` or a reply line, got `{0}`")]
    UnknownServerLine(String),
    #[error("expected `ACK <seq>` or `DONE`, got `{0}`")]
    UnknownClientLine(String),
    #[error("a chunk of {0} events; at most {MAX_CHUNK_EVENTS} are allowed")]
    ChunkTooLarge(usize),
}

impl ServerLine {
    /// Parses one server line (without its CRLF).
    pub fn parse(line: &str) -> Result<ServerLine, RelayLineError> {
        let unknown = || RelayLineError::UnknownServerLine(shown(line));
        if line == "PING" {
            return Ok(ServerLine::Ping);
        }
        if let Some(rest) = line.strip_prefix("EVENTS ") {
            let (seq, count) = rest.split_once(' ').ok_or_else(unknown)?;
            let seq = number(seq).ok_or_else(unknown)?;
            let count = number(count).ok_or_else(unknown)?;
            let count = usize::try_from(count).map_err(|_| unknown())?;
            if count > MAX_CHUNK_EVENTS {
                return Err(RelayLineError::ChunkTooLarge(count));
            }
            return Ok(ServerLine::Events { seq, count });
        }
        let bytes = line.as_bytes();
        if bytes.len() >= 4 && bytes[..3].iter().all(u8::is_ascii_digit) && bytes[3] == b' ' {
            let code = line[..3].parse().map_err(|_| unknown())?;
            return Ok(ServerLine::Reply {
                code,
                text: line[4..].to_owned(),
            });
        }
        Err(unknown())
    }

    /// The line, CRLF included.
    pub fn encode(&self) -> String {
        match self {
            ServerLine::Events { seq, count } => format!("EVENTS {seq} {count}\r\n"),
            ServerLine::Ping => "PING\r\n".to_owned(),
            ServerLine::Reply { code, text } => format!("{code:03} {text}\r\n"),
        }
    }
}

impl ClientLine {
    /// Parses one client line (without its CRLF). Keywords are
    /// case-insensitive, as commands are.
    pub fn parse(line: &str) -> Result<ClientLine, RelayLineError> {
        let trimmed = line.trim_matches([' ', '\t']);
        let (verb, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        match verb.to_ascii_uppercase().as_str() {
            "DONE" if rest.is_empty() => Ok(ClientLine::Done),
            "ACK" => number(rest.trim())
                .map(ClientLine::Ack)
                .ok_or_else(|| RelayLineError::UnknownClientLine(shown(line))),
            _ => Err(RelayLineError::UnknownClientLine(shown(line))),
        }
    }

    /// The line, CRLF included.
    pub fn encode(&self) -> String {
        match self {
            ClientLine::Ack(seq) => format!("ACK {seq}\r\n"),
            ClientLine::Done => "DONE\r\n".to_owned(),
        }
    }
}

/// A decimal of 1 to 19 digits, nothing else (no sign, no spaces).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// At most 32 characters of a peer's line, for an error text.
fn shown(line: &str) -> String {
    let mut text: String = line.chars().take(32).collect();
    if text.len() < line.len() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_round_trip() {
        for line in [
            ServerLine::Events { seq: 1, count: 3 },
            ServerLine::Events {
                seq: u64::MAX / 10,
                count: MAX_CHUNK_EVENTS,
            },
            ServerLine::Ping,
            ServerLine::Reply {
                code: 550,
                text: "no such subscription x.y.z".into(),
            },
        ] {
            let encoded = line.encode();
            let text = encoded.strip_suffix("\r\n").unwrap_or_default();
            assert_eq!(ServerLine::parse(text), Ok(line));
        }
    }

    #[test]
    fn client_lines_round_trip_and_ignore_case() {
        for line in [ClientLine::Ack(0), ClientLine::Ack(42), ClientLine::Done] {
            let encoded = line.encode();
            let text = encoded.strip_suffix("\r\n").unwrap_or_default();
            assert_eq!(ClientLine::parse(text), Ok(line));
        }
        assert_eq!(ClientLine::parse("ack 7"), Ok(ClientLine::Ack(7)));
        assert_eq!(ClientLine::parse(" done "), Ok(ClientLine::Done));
    }

    #[test]
    fn malformed_server_lines_are_errors() {
        for bad in [
            "",
            "EVENTS",
            "EVENTS 1",
            "EVENTS 1 2 3",
            "EVENTS -1 2",
            "EVENTS 1 +2",
            "EVENTS 99999999999999999999 1",
            "PINGS",
            "55 short",
            "5500 long",
            "{\"specversion\":\"1.0\"}",
        ] {
            assert!(ServerLine::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            ServerLine::parse("000 odd").map(|l| l.encode()),
            Ok("000 odd\r\n".to_owned()),
            "a code keeps its three digits"
        );
        assert_eq!(
            ServerLine::parse("EVENTS 1 1001"),
            Err(RelayLineError::ChunkTooLarge(1001))
        );
    }

    #[test]
    fn malformed_client_lines_are_errors() {
        for bad in ["", "ACK", "ACK x", "ACK 1 2", "ACK -1", "DONE now", "QUIT"] {
            assert!(ClientLine::parse(bad).is_err(), "{bad:?} parsed");
        }
        let long = format!("ACK {}", "9".repeat(100));
        let Err(RelayLineError::UnknownClientLine(shown)) = ClientLine::parse(&long) else {
            panic!("a 100-digit ACK parsed");
        };
        assert!(shown.chars().count() <= 33, "{shown}");
    }

    #[test]
    fn every_prefix_of_a_chunk_header_without_its_count_is_refused() {
        let line = "EVENTS 12 34";
        for end in 0..="EVENTS 12 ".len() {
            let prefix = &line[..end];
            if let Ok(parsed) = ServerLine::parse(prefix) {
                panic!("prefix {prefix:?} parsed as {parsed:?}");
            }
        }
    }
}

//! Opening a connection: TCP, TLS, then CONNECT and its CONNACK, all within
//! [`CONNECT_TIMEOUT`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rumqttc::mqttbytes::v4 as p4;
use rumqttc::tokio_rustls::TlsConnector;
use rumqttc::tokio_rustls::client::TlsStream;
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::bytes::BytesMut;

use super::codec::{self, Accepted, Inbound};
use super::packet::MAX_PACKET;
use super::{ConnectionError, MqttVersion};

/// Time allowed for TCP, TLS and CONNECT/CONNACK together.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read at most per read call.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// Where to connect.
pub(super) enum Target {
    Tcp {
        host: String,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
    /// Tests: each connect takes the next in-memory stream (a connect fails
    /// when there is none), whose other end plays the broker.
    #[cfg(test)]
    Memory(std::sync::Mutex<std::collections::VecDeque<tokio::io::DuplexStream>>),
}

/// Everything needed to (re)connect.
pub(super) struct Params {
    pub version: MqttVersion,
    pub target: Target,
    pub username: Option<String>,
    pub password: Option<String>,
    /// At most `u16::MAX` seconds, what CONNECT can carry.
    pub keep_alive: Duration,
    pub client_id: String,
    pub clean: bool,
    pub session_expiry_s: u32,
}

pub(super) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    #[cfg(test)]
    Memory(tokio::io::DuplexStream),
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
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_read(cx, buf),
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
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(test)]
            Stream::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The connected stream, what was read after the CONNACK (the broker may
/// resend a session's messages at once), and what the CONNACK said.
pub(super) type Connected = (Stream, BytesMut, Accepted);

/// Connects, sends CONNECT and waits for the CONNACK.
pub(super) async fn connect(p: Arc<Params>) -> Result<Connected, ConnectionError> {
    let attempt = async {
        let mut stream = open(&p.target).await?;
        let mut buf = BytesMut::with_capacity(256);
        write_connect(&p, &mut buf)?;
        stream.write_all(&buf).await?;
        stream.flush().await?;
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            if let Some(accepted) = read_connack(p.version, &mut rbuf)? {
                return Ok((stream, rbuf, accepted));
            }
            if stream.read_buf(&mut rbuf).await? == 0 {
                return Err(ConnectionError::ClosedBeforeConnAck);
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| ConnectionError::NoConnAck(CONNECT_TIMEOUT))?
}

/// TCP, and TLS over it when configured.
async fn open(target: &Target) -> Result<Stream, ConnectionError> {
    match target {
        Target::Tcp { host, port, tls } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            let _ = tcp.set_nodelay(true);
            let Some(config) = tls else {
                return Ok(Stream::Tcp(tcp));
            };
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                ConnectionError::TlsServerName {
                    host: host.clone(),
                    reason: e.to_string(),
                }
            })?;
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(ConnectionError::Tls)?;
            Ok(Stream::Tls(Box::new(tls)))
        }
        #[cfg(test)]
        Target::Memory(streams) => streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .map(Stream::Memory)
            .ok_or(ConnectionError::NoTestStream),
    }
}

/// Appends the CONNECT packet.
fn write_connect(p: &Params, buf: &mut BytesMut) -> Result<(), ConnectionError> {
    let encode = |e: String| ConnectionError::Encode {
        packet: "CONNECT",
        reason: e,
    };
    let keep_alive = u16::try_from(p.keep_alive.as_secs()).unwrap_or(u16::MAX);
    match p.version {
        MqttVersion::V311 => {
            let mut c = p4::Connect::new(p.client_id.clone());
            c.keep_alive = keep_alive;
            c.clean_session = p.clean;
            if let Some(u) = &p.username {
                c.set_login(u.clone(), p.password.clone().unwrap_or_default());
            }
            p4::Packet::Connect(c)
                .write(buf, MAX_PACKET as usize)
                .map_err(|e| encode(e.to_string()))?;
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
            .write(buf, None)
            .map_err(|e| encode(e.to_string()))?;
        }
    }
    Ok(())
}

/// The CONNACK at the start of `rbuf`, if complete; anything else first is
/// an error.
pub(super) fn read_connack(
    version: MqttVersion,
    rbuf: &mut BytesMut,
) -> Result<Option<Accepted>, ConnectionError> {
    match codec::decode(version, rbuf)? {
        None => Ok(None),
        Some(Inbound::ConnAck(accepted)) => accepted.map(Some),
        Some(other) => Err(ConnectionError::NotConnAck(other.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(version: MqttVersion) -> Params {
        Params {
            version,
            target: Target::Memory(Default::default()),
            username: Some("user".into()),
            password: Some("pw".into()),
            keep_alive: Duration::from_secs(30),
            client_id: "c1".into(),
            clean: true,
            session_expiry_s: 0,
        }
    }

    #[test]
    fn connect_v311_bytes() {
        let mut buf = BytesMut::new();
        write_connect(&params(MqttVersion::V311), &mut buf).unwrap();
        let expected: &[u8] = &[
            0x10,
            24, // CONNECT, remaining length
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            4,           // protocol name, level 4
            0b1100_0010, // user name, password, clean session
            0,
            30, // keep-alive
            0,
            2,
            b'c',
            b'1',
            0,
            4,
            b'u',
            b's',
            b'e',
            b'r',
            0,
            2,
            b'p',
            b'w',
        ];
        assert_eq!(&buf[..], expected);
    }

    #[test]
    fn connect_v5_announces_our_maximum_packet_size_and_session_expiry() {
        let mut p = params(MqttVersion::V5);
        p.clean = false;
        p.session_expiry_s = 0;
        p.username = None;
        let mut buf = BytesMut::new();
        write_connect(&p, &mut buf).unwrap();
        let expected: &[u8] = &[
            0x10, 25, 0, 4, b'M', b'Q', b'T', b'T', 5, // level 5
            0, // no clean start, no login
            0, 30, 10, // properties: 10 bytes
            0x11, 0, 0, 0, 1, // session expiry: at least 1 s
            0x27, 0x01, 0, 0, 0, // maximum packet size 16 MiB
            0, 2, b'c', b'1',
        ];
        assert_eq!(&buf[..], expected);
    }

    #[test]
    fn connack_waits_for_all_its_bytes() {
        let bytes = [0x20, 0x02, 0x01, 0x00, 0xD0];
        for end in 0..4 {
            let mut rbuf = BytesMut::from(&bytes[..end]);
            assert!(matches!(
                read_connack(MqttVersion::V311, &mut rbuf),
                Ok(None)
            ));
        }
        let mut rbuf = BytesMut::from(&bytes[..]);
        let accepted = read_connack(MqttVersion::V311, &mut rbuf).unwrap().unwrap();
        assert!(accepted.session_present);
        // What follows the CONNACK stays for the connection.
        assert_eq!(&rbuf[..], &[0xD0]);
    }

    #[test]
    fn anything_but_a_connack_first_is_an_error() {
        let mut rbuf = BytesMut::from(&[0xD0, 0x00][..]);
        let e = read_connack(MqttVersion::V5, &mut rbuf).unwrap_err();
        assert!(matches!(e, ConnectionError::NotConnAck("PINGRESP")), "{e}");
        let mut refused = BytesMut::from(&[0x20, 0x03, 0x00, 0x87, 0x00][..]);
        let e = read_connack(MqttVersion::V5, &mut refused).unwrap_err();
        assert!(
            matches!(&e, ConnectionError::Refused(code) if code == "NotAuthorized"),
            "{e}"
        );
        let mut garbage = BytesMut::from(&[0x00, 0x00][..]);
        assert!(read_connack(MqttVersion::V311, &mut garbage).is_err());
    }

    #[tokio::test]
    async fn connect_over_a_duplex_and_a_silent_or_closing_broker() {
        let (client, mut broker) = tokio::io::duplex(4096);
        let mut p = params(MqttVersion::V311);
        p.target = Target::Memory(std::sync::Mutex::new([client].into()));
        let p = Arc::new(p);
        let attempt = tokio::spawn(connect(p.clone()));
        let mut connect_packet = [0u8; 26];
        broker.read_exact(&mut connect_packet).await.unwrap();
        assert_eq!(connect_packet[0], 0x10);
        broker.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
        let (_, rest, accepted) = attempt.await.unwrap().unwrap();
        assert!(!accepted.session_present && rest.is_empty());
        // No stream left: refused, not a panic.
        assert!(connect(p).await.is_err());

        let (client, broker) = tokio::io::duplex(4096);
        let mut p = params(MqttVersion::V5);
        p.target = Target::Memory(std::sync::Mutex::new([client].into()));
        drop(broker);
        let e = connect(Arc::new(p)).await.err().unwrap();
        // The CONNECT meets a closed pipe, or the read finds the end.
        assert!(
            matches!(
                e,
                ConnectionError::Io(_) | ConnectionError::ClosedBeforeConnAck
            ),
            "{e}"
        );
    }
}

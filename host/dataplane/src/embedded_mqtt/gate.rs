//! The public listeners of the embedded broker. rumqttd listens on private
//! loopback ports; what devices connect to is a gate of ours, bound at
//! start (so a taken port fails the start) but accepting only once
//! [`Gates::open`] is called, when the pipelines reading the broker are
//! subscribed: a broker that acknowledged a QoS 1 message nobody has
//! subscribed to yet would drop it, which is the loss this prevents.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// A public listener and the private rumqttd port it leads to.
#[derive(Debug)]
struct Gate {
    listener: std::net::TcpListener,
    upstream: SocketAddr,
}

/// The gates of one broker; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gates {
    closed: Arc<Mutex<Vec<Gate>>>,
}

impl Gates {
    /// Binds `public` (without accepting yet) for the rumqttd listener at
    /// `upstream`.
    pub(crate) fn bind(&self, public: SocketAddr, upstream: SocketAddr) -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind(public)?;
        listener.set_nonblocking(true)?;
        if let Ok(mut closed) = self.closed.lock() {
            closed.push(Gate { listener, upstream });
        }
        Ok(())
    }

    /// Starts accepting on every gate; later calls do nothing.
    pub(crate) fn open(&self) -> std::io::Result<()> {
        let gates = match self.closed.lock() {
            Ok(mut closed) => std::mem::take(&mut *closed),
            Err(_) => return Ok(()),
        };
        for gate in gates {
            let listener = TcpListener::from_std(gate.listener)?;
            tokio::spawn(accept(listener, gate.upstream));
        }
        Ok(())
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(async move {
                    if let Err(error) = relay(client, upstream).await {
                        tracing::debug!(%peer, %error, "embedded MQTT connection ended");
                    }
                });
            }
            Err(error) => {
                // Out of descriptors, say: refuse for a moment, keep going.
                tracing::warn!(%error, "embedded MQTT broker cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let mut broker = connect_upstream(upstream).await?;
    client.set_nodelay(true)?;
    broker.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut broker).await?;
    Ok(())
}

/// Connects to rumqttd's private listener. rumqttd starts each listener on
/// a thread of its own, and only the plain ones are probed at start (a
/// bare probe of the TLS one would be logged as a failed handshake), so a
/// client may arrive before the TLS listener is bound: wait a little for
/// it rather than refuse the client.
async fn connect_upstream(upstream: SocketAddr) -> std::io::Result<TcpStream> {
    let mut delay = std::time::Duration::from_millis(5);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match TcpStream::connect(upstream).await {
            Ok(stream) => return Ok(stream),
            Err(error)
                if error.kind() == std::io::ErrorKind::ConnectionRefused
                    && tokio::time::Instant::now() + delay < deadline =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Connects to rumqttd at `address` with MQTT protocol `level` (4: 3.1.1,
/// 5: MQTT 5), waits for its CONNACK and disconnects.
pub(crate) async fn probe(address: SocketAddr, level: u8) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const CONNECT: u8 = 0x10;
    const CONNACK: u8 = 0x20;
    const DISCONNECT: [u8; 2] = [0xE0, 0x00];
    const CLEAN_SESSION: u8 = 0x02;
    const CLIENT_ID: &[u8] = b"fnaa-embedded-probe";
    let mut body = vec![
        0x00,
        0x04,
        b'M',
        b'Q',
        b'T',
        b'T',
        level,
        CLEAN_SESSION,
        0x00,
        0x3c,
    ];
    if level == 5 {
        body.push(0x00); // no properties
    }
    body.extend_from_slice(&(CLIENT_ID.len() as u16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID);
    let mut packet = vec![CONNECT, body.len() as u8];
    packet.extend_from_slice(&body);
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.write_all(&packet).await?;
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).await?;
        if header[0] != CONNACK {
            return Err(std::io::Error::other("no CONNACK"));
        }
        let mut rest = vec![0u8; usize::from(header[1])];
        stream.read_exact(&mut rest).await?;
        stream.write_all(&DISCONNECT).await?;
        // rumqttd closes the connection once it has handled DISCONNECT;
        // closing first races with that and makes it log an error.
        let mut rest = [0u8; 16];
        while stream.read(&mut rest).await? > 0 {}
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), exchange)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}

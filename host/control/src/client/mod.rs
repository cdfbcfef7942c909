//! An FNAP client (the FNUA side): used by the `flow` CLI and, later, by
//! an FNAA subscribing to a flow of another host.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::fnap::{Line, LineReader};
use crate::sasl::{self, SaslError, plain, scram};

mod relay;

/// The longest reply line a client accepts.
const MAX_REPLY_LINE: usize = 64 * 1024;
/// The most data lines a client accepts in one block.
const MAX_DATA_LINES: usize = 1_000_000;

/// A client failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the server closed the connection")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{code} {text}")]
    Rejected { code: u16, text: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("SASL: {0}")]
    Sasl(#[from] SaslError),
}

impl ClientError {
    /// The reply code when the server refused the command.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A server reply: the final line and, for a data block, its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub text: String,
    pub data: Option<Vec<String>>,
}

impl Response {
    /// Whether the code says success (2xx) or "go on" (3xx).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }
}

/// A `key=value` data block as pairs.
pub fn key_values(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while switching to TLS.
    Switching,
}

impl AsyncRead for Transport {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => std::pin::Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => std::pin::Pin::new(stream.as_mut()).poll_read(cx, buf),
            Transport::Switching => {
                std::task::Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
            }
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => std::pin::Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => std::pin::Pin::new(stream.as_mut()).poll_write(cx, buf),
            Transport::Switching => {
                std::task::Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
            }
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => std::pin::Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => std::pin::Pin::new(stream.as_mut()).poll_flush(cx),
            Transport::Switching => std::task::Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => std::pin::Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => std::pin::Pin::new(stream.as_mut()).poll_shutdown(cx),
            Transport::Switching => std::task::Poll::Ready(Ok(())),
        }
    }
}

/// Receives the protocol exchange as text lines (`C: ...`), for `-d`.
pub type Trace = Box<dyn FnMut(&str) + Send + Sync>;

/// A TLS client configuration trusting the PEM certificates in `ca_pem`.
pub fn tls_config_from_pem(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let certificates: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &*ca_pem)
        .collect::<Result<_, _>>()
        .map_err(|error| ClientError::Tls(format!("bad CA PEM: {error}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| ClientError::Tls(error.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| ClientError::Tls(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An open FNAP session.
pub struct Client {
    transport: Transport,
    reader: LineReader,
    greeting: String,
    timeout: Duration,
    trace: Option<Trace>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("greeting", &self.greeting)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects in clear text and reads the greeting.
    pub async fn connect(
        address: SocketAddr,
        timeout: Duration,
        trace: Option<Trace>,
    ) -> Result<Client, ClientError> {
        let mut client = Client::open(address, timeout, trace).await?;
        client.transport = Transport::Plain(client.tcp(address).await?);
        client.read_greeting().await?;
        Ok(client)
    }

    /// Connects with implicit TLS and reads the greeting.
    pub async fn connect_tls(
        address: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
        timeout: Duration,
        trace: Option<Trace>,
    ) -> Result<Client, ClientError> {
        let mut client = Client::open(address, timeout, trace).await?;
        let stream = client.tcp(address).await?;
        client.transport = Transport::Tls(Box::new(
            client.handshake(stream, server_name, config).await?,
        ));
        client.read_greeting().await?;
        Ok(client)
    }

    async fn open(
        address: SocketAddr,
        timeout: Duration,
        trace: Option<Trace>,
    ) -> Result<Client, ClientError> {
        let mut client = Client {
            transport: Transport::Switching,
            reader: LineReader::new(MAX_REPLY_LINE),
            greeting: String::new(),
            timeout,
            trace,
        };
        client.log(&format!("C: Connecting to {address}"));
        Ok(client)
    }

    async fn tcp(&self, address: SocketAddr) -> Result<TcpStream, ClientError> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(address))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn handshake(
        &self,
        stream: TcpStream,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|error| ClientError::Tls(error.to_string()))?;
        let connect = TlsConnector::from(config).connect(name, stream);
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(ClientError::Tls(error.to_string())),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    async fn read_greeting(&mut self) -> Result<(), ClientError> {
        let response = self.read_response().await?;
        if response.code != 220 {
            return Err(ClientError::Rejected {
                code: response.code,
                text: response.text,
            });
        }
        self.greeting = response.text;
        Ok(())
    }

    /// The greeting text, e.g. `fnaa.unix.ar FNAA`.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    fn log(&mut self, text: &str) {
        if let Some(trace) = &mut self.trace {
            trace(text);
        }
    }

    /// Upgrades the connection with STARTTLS.
    pub async fn starttls(
        &mut self,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<(), ClientError> {
        self.expect_positive("STARTTLS").await?;
        let Transport::Plain(stream) = std::mem::replace(&mut self.transport, Transport::Switching)
        else {
            return Err(ClientError::Protocol(
                "STARTTLS on a connection that is not clear text".into(),
            ));
        };
        self.reader = LineReader::new(MAX_REPLY_LINE);
        self.transport =
            Transport::Tls(Box::new(self.handshake(stream, server_name, config).await?));
        Ok(())
    }

    async fn write_line(&mut self, line: &str) -> Result<(), ClientError> {
        let bytes = format!("{line}\r\n");
        let write = async {
            self.transport.write_all(bytes.as_bytes()).await?;
            self.transport.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| ClientError::Timeout)??;
        self.log(&format!("C: Wrote ({} bytes written)", bytes.len()));
        Ok(())
    }

    async fn read_line(&mut self) -> Result<String, ClientError> {
        self.read_line_within(self.timeout).await
    }

    /// The next line, waiting at most `timeout` for it. Cancel-safe: input
    /// read stays buffered for the next call.
    async fn read_line_within(&mut self, timeout: Duration) -> Result<String, ClientError> {
        let mut buffer = [0u8; 8192];
        loop {
            match self.reader.next_line() {
                Some(Line::Text(text)) => return Ok(text),
                Some(Line::TooLong) => {
                    return Err(ClientError::Protocol("reply line too long".into()));
                }
                Some(Line::Invalid) => {
                    return Err(ClientError::Protocol("reply line is not UTF-8 text".into()));
                }
                None => {}
            }
            let count = tokio::time::timeout(timeout, self.transport.read(&mut buffer))
                .await
                .map_err(|_| ClientError::Timeout)??;
            if count == 0 {
                return Err(ClientError::Closed);
            }
            self.reader.push(&buffer[..count]);
        }
    }

    /// Reads one reply, with its data block if it has one.
    pub async fn read_response(&mut self) -> Result<Response, ClientError> {
        let first = self.read_line().await?;
        self.log(&format!("C: Got a response: {first}"));
        let (code, text) = parse_reply_line(&first)?;
        if code != 220 || text != "DATA" {
            return Ok(Response {
                code,
                text,
                data: None,
            });
        }
        let mut data = Vec::new();
        loop {
            let line = self.read_line().await?;
            if let Ok((code, text)) = parse_reply_line(&line) {
                self.log(&format!("C: Got a response: {line}"));
                return Ok(Response {
                    code,
                    text,
                    data: Some(data),
                });
            }
            self.log(&format!("C: Data: {line}"));
            if data.len() >= MAX_DATA_LINES {
                return Err(ClientError::Protocol("data block too long".into()));
            }
            data.push(line);
        }
    }

    /// Sends a command line and reads the reply, whatever its code.
    pub async fn raw_command(&mut self, line: &str) -> Result<Response, ClientError> {
        self.log(&format!("C: Sending command {line}"));
        self.write_line(line).await?;
        self.read_response().await
    }

    /// Sends a command; a 4xx or 5xx reply becomes [`ClientError::Rejected`].
    pub async fn command(&mut self, line: &str) -> Result<Response, ClientError> {
        let response = self.raw_command(line).await?;
        if !response.is_positive() {
            return Err(ClientError::Rejected {
                code: response.code,
                text: response.text,
            });
        }
        if response.code == 220 {
            self.log(&format!("C: Server sent OK for command {line}"));
        }
        Ok(response)
    }

    async fn expect_positive(&mut self, line: &str) -> Result<Response, ClientError> {
        self.command(line).await
    }

    /// Sends a SASL response (never traced in clear: it holds credentials).
    async fn sasl_send(&mut self, message: &[u8]) -> Result<Response, ClientError> {
        let encoded = sasl::encode(message);
        self.log(&format!(
            "C: Authentication string sent: <{} characters, not shown>",
            encoded.len()
        ));
        self.write_line(&encoded).await?;
        let response = self.read_response().await?;
        if !response.is_positive() {
            return Err(ClientError::Rejected {
                code: response.code,
                text: response.text,
            });
        }
        Ok(response)
    }

    /// AUTHENTICATE PLAIN, as in thesis 7.4.1.
    pub async fn authenticate_plain(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        self.expect_positive("AUTHENTICATE PLAIN").await?;
        self.sasl_send(&plain::message(username, password)).await?;
        Ok(())
    }

    /// AUTHENTICATE SCRAM-SHA-256; also checks that the server knew the
    /// password's verifiers.
    pub async fn authenticate_scram(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        self.expect_positive("AUTHENTICATE SCRAM-SHA-256").await?;
        let (mut exchange, first) = scram::ClientExchange::start(username, password);
        let challenge = self.sasl_send(first.as_bytes()).await?;
        let server_first = sasl_challenge(&challenge)?;
        let client_final = exchange.respond(&server_first)?;
        let outcome = self.sasl_send(client_final.as_bytes()).await?;
        exchange.verify(&sasl_challenge(&outcome)?)?;
        self.sasl_send(b"").await?;
        Ok(())
    }

    /// AUTHENTICATE ANONYMOUS with an optional trace text (RFC 4505).
    pub async fn authenticate_anonymous(&mut self, trace: &str) -> Result<(), ClientError> {
        self.expect_positive("AUTHENTICATE ANONYMOUS").await?;
        self.sasl_send(trace.as_bytes()).await?;
        Ok(())
    }

    /// QUIT and close.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        let response = self.raw_command("QUIT").await;
        let _ = self.transport.shutdown().await;
        response.map(|_| ())
    }

    /// CREATE FLOW; returns the flow name the server confirmed.
    pub async fn create_flow(&mut self, flow: &str, public: bool) -> Result<String, ClientError> {
        let line = if public {
            format!("CREATE FLOW {flow} PUBLIC")
        } else {
            format!("CREATE FLOW {flow}")
        };
        let response = self.command(&line).await?;
        Ok(response
            .text
            .strip_prefix("OK ")
            .unwrap_or(&response.text)
            .to_owned())
    }

    /// DESCRIBE FLOW as `key=value` pairs.
    pub async fn describe_flow(
        &mut self,
        flow: &str,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let response = self.command(&format!("DESCRIBE FLOW {flow}")).await?;
        Ok(key_values(&response.data.unwrap_or_default()))
    }

    /// A command answered with a data block; returns its lines.
    pub async fn data_command(&mut self, line: &str) -> Result<Vec<String>, ClientError> {
        let response = self.command(line).await?;
        response.data.ok_or_else(|| {
            ClientError::Protocol(format!(
                "expected a data block, got `{} {}`",
                response.code, response.text
            ))
        })
    }

    /// SUBSCRIBE; returns the subscription (copy flow) name.
    pub async fn subscribe(
        &mut self,
        source: &str,
        local: Option<&str>,
    ) -> Result<String, ClientError> {
        let line = match local {
            Some(local) => format!("SUBSCRIBE {source} LOCAL {local}"),
            None => format!("SUBSCRIBE {source}"),
        };
        let lines = self.data_command(&line).await?;
        lines
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("SUBSCRIBE returned no flow".into()))
    }
}

fn sasl_challenge(response: &Response) -> Result<Vec<u8>, ClientError> {
    if response.code != 334 {
        return Err(ClientError::Protocol(format!(
            "expected a SASL challenge, got `{} {}`",
            response.code, response.text
        )));
    }
    Ok(sasl::decode(&response.text)?)
}

/// `<3 digits> SP <text>` (or just the 3 digits).
fn parse_reply_line(line: &str) -> Result<(u16, String), ClientError> {
    let bytes = line.as_bytes();
    let well_formed = bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && (bytes.len() == 3 || bytes[3] == b' ');
    if !well_formed {
        return Err(ClientError::Protocol(format!("not a reply line: {line}")));
    }
    let code = line[..3]
        .parse()
        .map_err(|_| ClientError::Protocol(format!("bad reply code in {line}")))?;
    Ok((code, line.get(4..).unwrap_or("").to_owned()))
}

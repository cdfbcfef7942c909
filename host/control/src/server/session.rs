//! One FNAP session: the server side of the state machine of
//! docs/fnap.md (waiting → accepting → ready ⇄ cmdRecvd).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::commands::execute;
use super::{Shared, relay};
use crate::fnap::cmd::authenticate::Authenticate;
use crate::fnap::reply::fixed;
use crate::fnap::{Command, Line, LineReader, Reply};
use crate::sasl::{self, Mechanism, SaslError, plain, scram};
use crate::service::{AnonymousSession, Principal, ServiceError};

/// How a session ended.
enum End {
    Closed,
    /// The client asked for STARTTLS and was told to go ahead.
    StartTls,
}

/// What to do after a command.
enum Next {
    Continue,
    Close,
    StartTls,
}

/// What came from the client.
enum Input {
    Line(String),
    TooLong,
    Invalid,
    Eof,
    Idle,
    Shutdown,
}

/// Serves one connection until it closes.
pub(super) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    shutdown: CancellationToken,
) {
    tracing::debug!(%peer, implicit_tls, "connection accepted");
    if implicit_tls {
        if let Some(stream) = handshake(&shared, stream, peer).await {
            let mut session = Session::new(&shared, stream, peer, true, shutdown, 0);
            let _ = session.run(true).await;
        }
        return;
    }
    let mut session = Session::new(&shared, stream, peer, false, shutdown.clone(), 0);
    match session.run(true).await {
        Ok(End::StartTls) => {
            let failed_logins = session.failed_logins;
            let stream = session.stream;
            if let Some(stream) = handshake(&shared, stream, peer).await {
                // No greeting after STARTTLS: the client goes on with
                // AUTHENTICATE (docs/fnap.md, STARTTLS).
                let mut session =
                    Session::new(&shared, stream, peer, true, shutdown, failed_logins);
                let _ = session.run(false).await;
            }
        }
        Ok(End::Closed) => {}
        Err(error) => tracing::debug!(%peer, %error, "connection error"),
    }
    tracing::debug!(%peer, "connection closed");
}

async fn handshake(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = shared.tls.as_ref()?;
    match tokio::time::timeout(shared.config.idle_timeout(), acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

struct Session<'a, S> {
    shared: &'a Shared,
    stream: S,
    reader: LineReader,
    peer: SocketAddr,
    tls: bool,
    principal: Option<Principal>,
    failed_logins: u32,
    shutdown: CancellationToken,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Session<'a, S> {
    fn new(
        shared: &'a Shared,
        stream: S,
        peer: SocketAddr,
        tls: bool,
        shutdown: CancellationToken,
        failed_logins: u32,
    ) -> Session<'a, S> {
        let reader = LineReader::new(shared.config.max_line_length);
        Session {
            shared,
            stream,
            reader,
            peer,
            tls,
            principal: None,
            failed_logins,
            shutdown,
        }
    }

    fn hostname(&self) -> &str {
        &self.shared.config.hostname
    }

    async fn run(&mut self, greet: bool) -> std::io::Result<End> {
        if greet {
            self.send(&fixed::greeting(self.hostname())).await?;
        }
        loop {
            let reply = match self.next_input().await? {
                Input::Line(line) => match self.handle(&line).await? {
                    Next::Continue => continue,
                    Next::Close => return Ok(End::Closed),
                    Next::StartTls => return Ok(End::StartTls),
                },
                Input::TooLong => fixed::line_too_long(self.shared.config.max_line_length),
                Input::Invalid => fixed::invalid_line(),
                Input::Eof => return Ok(End::Closed),
                Input::Idle => {
                    self.send(&fixed::idle_timeout(self.hostname())).await?;
                    return Ok(End::Closed);
                }
                Input::Shutdown => {
                    self.send(&fixed::shutting_down(self.hostname())).await?;
                    return Ok(End::Closed);
                }
            };
            self.send(&reply).await?;
        }
    }

    async fn next_input(&mut self) -> std::io::Result<Input> {
        let mut buffer = [0u8; 4096];
        loop {
            match self.reader.next_line() {
                Some(Line::Text(text)) => return Ok(Input::Line(text)),
                Some(Line::TooLong) => return Ok(Input::TooLong),
                Some(Line::Invalid) => return Ok(Input::Invalid),
                None => {}
            }
            let idle = self.shared.config.idle_timeout();
            let read = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Ok(Input::Shutdown),
                read = tokio::time::timeout(idle, self.stream.read(&mut buffer)) => read,
            };
            match read {
                Err(_) => return Ok(Input::Idle),
                Ok(Ok(0)) => return Ok(Input::Eof),
                Ok(Ok(count)) => self.reader.push(&buffer[..count]),
                Ok(Err(error)) => return Err(error),
            }
        }
    }

    async fn send(&mut self, reply: &Reply) -> std::io::Result<()> {
        write_within(
            &mut self.stream,
            &reply.encode(),
            self.shared.config.idle_timeout(),
        )
        .await
    }

    async fn handle(&mut self, line: &str) -> std::io::Result<Next> {
        let command = match Command::parse(line) {
            Ok(command) => command,
            Err(error) => {
                self.send(&Reply::from(&error)).await?;
                return Ok(Next::Continue);
            }
        };
        tracing::debug!(peer = %self.peer, verb = command.verb(), "command");
        let reply = match (&self.principal, command) {
            (_, Command::Quit) => {
                self.send(&fixed::bye(self.hostname())).await?;
                let _ = self.stream.shutdown().await;
                return Ok(Next::Close);
            }
            (_, Command::Noop) => Reply::ok("OK"),
            (_, Command::Help(help)) => Reply::data(help.lines()),
            (None, Command::StartTls) => return self.start_tls().await,
            (Some(_), Command::StartTls) => fixed::starttls_after_auth(),
            (None, Command::Authenticate(request)) => return self.authenticate(request).await,
            (Some(_), Command::Authenticate(_)) => fixed::already_authenticated(),
            (None, _) => fixed::authentication_required(),
            (Some(principal), Command::Relay(request)) => {
                let principal = principal.clone();
                let connection = relay::Connection {
                    stream: &mut self.stream,
                    reader: &mut self.reader,
                    shutdown: &self.shutdown,
                };
                return Ok(
                    match relay::serve(self.shared, connection, principal, request).await? {
                        relay::Ended::Commands => Next::Continue,
                        relay::Ended::Close => Next::Close,
                    },
                );
            }
            (Some(principal), command) => self.execute(principal.clone(), command).await,
        };
        self.send(&reply).await?;
        Ok(Next::Continue)
    }

    /// Runs a command in its own task: if the client goes away or the
    /// command times out, the operation still completes or undoes itself.
    async fn execute(&self, principal: Principal, command: Command) -> Reply {
        let service = Arc::clone(&self.shared.service);
        let task = tokio::spawn(async move { execute(&service, &principal, command).await });
        match tokio::time::timeout(self.shared.config.command_timeout(), task).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                tracing::error!(%error, "command task failed");
                Reply::from(&ServiceError::Store("command task failed".into()))
            }
            Err(_) => fixed::command_timeout(),
        }
    }

    async fn start_tls(&mut self) -> std::io::Result<Next> {
        if self.tls {
            self.send(&fixed::tls_already_active()).await?;
            return Ok(Next::Continue);
        }
        if self.shared.tls.is_none() {
            self.send(&fixed::starttls_unavailable()).await?;
            return Ok(Next::Continue);
        }
        // Anything pipelined after STARTTLS was sent in clear text and must
        // not be taken as a command (RFC 3207, section 5).
        self.reader.clear();
        self.send(&fixed::ready_for_tls()).await?;
        Ok(Next::StartTls)
    }

    /// The next SASL response line; `Err(next)` when the exchange ends
    /// without one (the reply has been sent).
    async fn sasl_response(&mut self) -> std::io::Result<Result<String, Next>> {
        let reply = match self.next_input().await? {
            Input::Line(line) if line.trim() == "*" => fixed::authentication_cancelled(),
            Input::Line(line) => return Ok(Ok(line)),
            Input::TooLong => fixed::line_too_long(self.shared.config.max_line_length),
            Input::Invalid => fixed::invalid_line(),
            Input::Eof => return Ok(Err(Next::Close)),
            Input::Idle => {
                self.send(&fixed::idle_timeout(self.hostname())).await?;
                return Ok(Err(Next::Close));
            }
            Input::Shutdown => {
                self.send(&fixed::shutting_down(self.hostname())).await?;
                return Ok(Err(Next::Close));
            }
        };
        self.send(&reply).await?;
        Ok(Err(Next::Continue))
    }

    async fn authenticate(&mut self, request: Authenticate) -> std::io::Result<Next> {
        let config = &self.shared.config;
        if self.shared.throttle.is_blocked(self.peer.ip()) {
            self.send(&fixed::throttled()).await?;
            return Ok(Next::Continue);
        }
        let Some(mechanism) = Mechanism::from_name(&request.mechanism) else {
            let offered = self.offered_mechanisms().join(" ");
            self.send(&fixed::unknown_mechanism(&request.mechanism, &offered))
                .await?;
            return Ok(Next::Continue);
        };
        match mechanism {
            Mechanism::Plain if !self.tls && !config.plaintext_auth_allowed() => {
                self.send(&fixed::encryption_required()).await?;
                return Ok(Next::Continue);
            }
            Mechanism::Anonymous if !config.allow_anonymous => {
                self.send(&fixed::mechanism_disabled(mechanism.name()))
                    .await?;
                return Ok(Next::Continue);
            }
            _ => {}
        }
        let first = match request.initial_response {
            Some(response) => response,
            None => {
                self.send(&fixed::go_ahead()).await?;
                match self.sasl_response().await? {
                    Ok(line) => line,
                    Err(next) => return Ok(next),
                }
            }
        };
        let outcome = match mechanism {
            Mechanism::Plain => self.authenticate_plain(&first).await,
            Mechanism::Anonymous => sasl::decode(&first)
                .map(|trace| {
                    Principal::Anonymous(AnonymousSession::from_trace(self.peer.ip(), &trace))
                })
                .map_err(Failure::Sasl),
            Mechanism::ScramSha256 => match self.authenticate_scram(&first).await? {
                Scram::Done(outcome) => outcome,
                Scram::Ended(next) => return Ok(next),
            },
        };
        match outcome {
            Ok(principal) => {
                tracing::info!(peer = %self.peer, user = principal.name(), mechanism = mechanism.name(), "authenticated");
                self.principal = Some(principal);
                self.send(&fixed::authenticated()).await?;
                Ok(Next::Continue)
            }
            Err(Failure::Sasl(error @ (SaslError::BadBase64 | SaslError::Malformed(_)))) => {
                self.send(&Reply::from(&error)).await?;
                Ok(Next::Continue)
            }
            Err(Failure::Service(error @ ServiceError::Store(_))) => {
                self.send(&Reply::from(&error)).await?;
                Ok(Next::Continue)
            }
            Err(_) => self.login_failed(mechanism).await,
        }
    }

    async fn login_failed(&mut self, mechanism: Mechanism) -> std::io::Result<Next> {
        tracing::info!(peer = %self.peer, mechanism = mechanism.name(), "failed login");
        self.shared.throttle.record_failure(self.peer.ip());
        self.failed_logins += 1;
        tokio::time::sleep(Duration::from_millis(
            self.shared.config.login_failure_delay_ms,
        ))
        .await;
        self.send(&Reply::from(&ServiceError::AuthenticationFailed))
            .await?;
        if self.failed_logins >= self.shared.config.login_failures_per_connection {
            self.send(&fixed::too_many_failures(self.hostname()))
                .await?;
            return Ok(Next::Close);
        }
        Ok(Next::Continue)
    }

    fn offered_mechanisms(&self) -> Vec<&'static str> {
        let config = &self.shared.config;
        sasl::MECHANISMS
            .iter()
            .copied()
            .filter(|name| match *name {
                "PLAIN" => self.tls || config.plaintext_auth_allowed(),
                "ANONYMOUS" => config.allow_anonymous,
                _ => true,
            })
            .collect()
    }

    async fn authenticate_plain(&self, response: &str) -> Result<Principal, Failure> {
        let message = sasl::decode(response).map_err(Failure::Sasl)?;
        let credentials = plain::parse(&message).map_err(Failure::Sasl)?;
        self.shared
            .service
            .authenticate_password(&credentials.username, &credentials.password)
            .await
            .map_err(Failure::Service)
    }

    async fn authenticate_scram(&mut self, response: &str) -> std::io::Result<Scram> {
        let failed = |failure| Ok(Scram::Done(Err(failure)));
        let first =
            match sasl::decode(response).and_then(|message| scram::ClientFirst::parse(&message)) {
                Ok(first) => first,
                Err(error) => return failed(Failure::Sasl(error)),
            };
        let (keys, known) = match self.shared.service.scram_keys(&first.username).await {
            Ok(found) => found,
            Err(error) => return failed(Failure::Service(error)),
        };
        let (exchange, server_first) = scram::ServerExchange::start(first, keys);
        self.send(&fixed::challenge(sasl::encode(server_first.as_bytes())))
            .await?;
        let client_final = match self.sasl_response().await? {
            Ok(line) => line,
            Err(next) => return Ok(Scram::Ended(next)),
        };
        let server_final =
            match sasl::decode(&client_final).and_then(|message| exchange.finish(&message)) {
                Ok(server_final) if known => server_final,
                Ok(_) => return failed(Failure::Sasl(SaslError::Failed)),
                Err(error) => return failed(Failure::Sasl(error)),
            };
        // RFC 5802: the server proves itself; the client then sends an
        // empty response.
        self.send(&fixed::challenge(sasl::encode(server_final.as_bytes())))
            .await?;
        match self.sasl_response().await? {
            Ok(_) => Ok(Scram::Done(Ok(Principal::User(
                exchange.username().to_owned(),
            )))),
            Err(next) => Ok(Scram::Ended(next)),
        }
    }
}

/// Writes `bytes` and flushes them, giving up after `timeout`: a client
/// that stops reading must not hold its session forever.
pub(super) async fn write_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client does not read",
        )),
    }
}

/// How a SCRAM exchange ended: with a login or its failure, or with the
/// session (the client went, or cancelled with `*`).
enum Scram {
    Done(Result<Principal, Failure>),
    Ended(Next),
}

/// Why a login did not succeed.
enum Failure {
    Sasl(SaslError),
    Service(ServiceError),
}

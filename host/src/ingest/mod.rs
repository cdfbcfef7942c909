//! The ingestion listener: CloudEvents over HTTP/1.1 (optionally HTTPS)
//! into a durable outbox. See [`IngestConfig`] for the contract.

pub mod config;
mod handler;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use config::{Credential, IngestConfig};
use handler::{Ingest, Request, Response};

/// A running listener.
#[derive(Debug)]
pub struct IngestServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IngestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `[ingest]` and serves it until the returned server is dropped.
pub async fn start(
    config: &IngestConfig,
    brokers: &fnaa_dataplane::BrokersConfig,
) -> anyhow::Result<IngestServer> {
    let credential = config.credential()?;
    let outbox = match brokers.connections.get(&config.outbox) {
        Some(fnaa_dataplane::transport::BrokerConfig::Outbox(outbox)) => outbox
            .open()
            .with_context(|| format!("[ingest] cannot open outbox {:?}", config.outbox))?,
        Some(_) => anyhow::bail!(
            "[ingest] outbox = {:?} is not a broker of type = \"outbox\"",
            config.outbox
        ),
        None => anyhow::bail!(
            "[ingest] outbox = {:?}: no [brokers.connections.{}] of type = \"outbox\"",
            config.outbox,
            config.outbox
        ),
    };
    let tls = match &config.tls {
        Some(files) => Some(
            fnaa_control::server::tls::load_acceptor(files)
                .context("[ingest.tls] cannot be loaded")?,
        ),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("[ingest] cannot listen on {}", config.listen))?;
    let local_addr = listener.local_addr()?;
    let ingest = Arc::new(Ingest {
        outbox,
        credential,
        topics: config.topics.clone(),
        max_events: config.max_events,
    });
    let limit = config.max_body_bytes;
    tracing::info!(%local_addr, tls = tls.is_some(), "ingestion listener ready");
    let task = tokio::spawn(accept_loop(listener, tls, ingest, limit));
    Ok(IngestServer { local_addr, task })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ingest: Arc<Ingest>,
    limit: usize,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, mostly: wait instead of spinning.
                tracing::warn!(%error, "ingestion listener cannot accept");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Answers are small and written once: no reason to wait for ACKs.
        let _ = stream.set_nodelay(true);
        let ingest = ingest.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let ingest = ingest.clone();
                async move { Ok::<_, std::convert::Infallible>(serve(&ingest, request, limit).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let result = match tls {
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "ingestion TLS handshake failed");
                        return;
                    }
                },
                None => http.serve_connection(TokioIo::new(stream), service).await,
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "ingestion connection ended");
            }
        });
    }
}

/// Reads the request within the body limit and answers it.
async fn serve(
    ingest: &Arc<Ingest>,
    request: hyper::Request<Incoming>,
    limit: usize,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .map(|v: &HeaderValue| v.as_bytes().to_vec())
    };
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let response = if declared.is_some_and(|n| n > limit) {
        too_large(limit)
    } else {
        match Limited::new(body, limit).collect().await {
            Ok(body) => {
                let request = Request {
                    method: parts.method.as_str().to_owned(),
                    path: parts.uri.path().to_owned(),
                    authorization: header(AUTHORIZATION),
                    content_type: parts
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                        .collect(),
                    body: body.to_bytes().to_vec(),
                };
                ingest.handle(request).await
            }
            Err(error) if error.is::<http_body_util::LengthLimitError>() => too_large(limit),
            Err(error) => Response {
                status: 400,
                body: serde_json::json!({ "error": format!("cannot read the body: {error}") })
                    .to_string(),
            },
        }
    };
    into_hyper(response)
}

fn too_large(limit: usize) -> Response {
    Response {
        status: 413,
        body: serde_json::json!({
            "error": format!("the body exceeds {limit} bytes (see [ingest] max_body_bytes)")
        })
        .to_string(),
    }
}

fn into_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if response.status == 401 {
        out.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    out
}

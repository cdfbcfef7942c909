//! The server's TLS identity (rustls with the ring provider).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::ServerError;
use crate::config::TlsFiles;

/// Reads the PEM files of `[fnap.tls]`.
pub fn load_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|error| ServerError::Tls(format!("cannot read {}: {error}", path.display())))
    };
    acceptor_from_pem(&read(&files.certificate)?, &read(&files.private_key)?)
}

/// A TLS acceptor from a PEM certificate chain and private key.
pub fn acceptor_from_pem(
    certificate_pem: &[u8],
    key_pem: &[u8],
) -> Result<TlsAcceptor, ServerError> {
    let certificates: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &*certificate_pem)
        .collect::<Result<_, _>>()
        .map_err(|error| ServerError::Tls(format!("bad certificate PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(ServerError::Tls(
            "no certificate in the certificate file".into(),
        ));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &*key_pem)
        .map_err(|error| ServerError::Tls(format!("bad private key PEM: {error}")))?
        .ok_or_else(|| ServerError::Tls("no private key in the key file".into()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| ServerError::Tls(error.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .map_err(|error| ServerError::Tls(error.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

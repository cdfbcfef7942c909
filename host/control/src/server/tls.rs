//! TLS identities (rustls with the ring provider) for the FNAP listeners
//! (`[fnap.tls]`) and the gRPC listener (`[grpc.tls]`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::ServerError;
use crate::config::TlsFiles;

/// Reads the PEM files of `[fnap.tls]`.
pub fn load_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    Ok(TlsAcceptor::from(Arc::new(load_server_config(files)?)))
}

/// The rustls configuration of a `[fnap.tls]` or `[grpc.tls]` section;
/// every error names the file it is about.
pub fn load_server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ServerError> {
    let certificates = certificates(&read(&files.certificate)?)
        .map_err(|error| in_file(&files.certificate, error))?;
    let key = private_key(&read(&files.private_key)?)
        .map_err(|error| in_file(&files.private_key, error))?;
    server_config(certificates, key).map_err(|error| match error {
        ServerError::Tls(detail) => ServerError::Tls(format!(
            "{} with {}: {detail}",
            files.certificate.display(),
            files.private_key.display()
        )),
        other => other,
    })
}

/// A TLS acceptor from a PEM certificate chain and private key.
pub fn acceptor_from_pem(
    certificate_pem: &[u8],
    key_pem: &[u8],
) -> Result<TlsAcceptor, ServerError> {
    let config = server_config(certificates(certificate_pem)?, private_key(key_pem)?)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path)
        .map_err(|error| ServerError::Tls(format!("cannot read {}: {error}", path.display())))
}

fn in_file(path: &Path, error: ServerError) -> ServerError {
    match error {
        ServerError::Tls(detail) => ServerError::Tls(format!("{}: {detail}", path.display())),
        other => other,
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certificates: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &*pem)
        .collect::<Result<_, _>>()
        .map_err(|error| ServerError::Tls(format!("bad certificate PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(ServerError::Tls(
            "no certificate in the certificate file".into(),
        ));
    }
    Ok(certificates)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, ServerError> {
    rustls_pemfile::private_key(&mut &*pem)
        .map_err(|error| ServerError::Tls(format!("bad private key PEM: {error}")))?
        .ok_or_else(|| ServerError::Tls("no private key in the key file".into()))
}

fn server_config(
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, ServerError> {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| ServerError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| ServerError::Tls(error.to_string()))
}

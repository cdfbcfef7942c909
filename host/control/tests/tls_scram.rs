//! TLS (implicit and STARTTLS, with a certificate made by the test) and
//! SCRAM-SHA-256 end to end.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fakes, TestHost, test_config};
use fnaa_control::client::{Client, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    acceptor: tokio_rustls::TlsAcceptor,
    client: Arc<rustls::ClientConfig>,
}

fn pki() -> Pki {
    let certified = rcgen::generate_simple_self_signed(vec!["fnaa.unix.ar".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    Pki {
        acceptor: fnaa_control::server::tls::acceptor_from_pem(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
        )
        .unwrap(),
        client: fnaa_control::client::tls_config_from_pem(cert_pem.as_bytes()).unwrap(),
    }
}

async fn tls_host(pki: &Pki) -> TestHost {
    let mut config = test_config();
    config.fnap.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    config.fnap.allow_plaintext_auth = Some(false);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    TestHost::start_in(dir, config, Fakes::new(), Some(pki.acceptor.clone()), true).await
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn implicit_tls() {
    let pki = pki();
    let host = tls_host(&pki).await;
    let address = host.fnap_tls.unwrap();
    let mut client =
        Client::connect_tls(address, "fnaa.unix.ar", pki.client.clone(), TIMEOUT, None)
            .await
            .unwrap();
    assert_eq!(client.greeting(), "fnaa.unix.ar FNAA");
    client.authenticate_plain("test", "test").await.unwrap();
    assert_eq!(
        client
            .create_flow("time.flows.unix.ar", false)
            .await
            .unwrap(),
        "time.flows.unix.ar"
    );
    let description = client.describe_flow("time.flows.unix.ar").await.unwrap();
    assert!(description.contains(&("server".to_owned(), "kf1.unix.ar:9092".to_owned())));
    client.quit().await.unwrap();

    // A client that does not trust the certificate fails the handshake.
    let other = rcgen::generate_simple_self_signed(vec!["fnaa.unix.ar".to_owned()]).unwrap();
    let untrusted = fnaa_control::client::tls_config_from_pem(other.cert.pem().as_bytes()).unwrap();
    let refused = Client::connect_tls(address, "fnaa.unix.ar", untrusted, TIMEOUT, None).await;
    assert!(matches!(refused, Err(ClientError::Tls(_))), "{refused:?}");
}

#[tokio::test]
async fn starttls_then_plain() {
    let pki = pki();
    let host = tls_host(&pki).await;
    let mut client = Client::connect(host.fnap, TIMEOUT, None).await.unwrap();
    let refused = client
        .raw_command("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==")
        .await
        .unwrap();
    assert_eq!(
        refused.code, 538,
        "PLAIN is refused in clear text when TLS is offered"
    );
    client
        .starttls("fnaa.unix.ar", pki.client.clone())
        .await
        .unwrap();
    assert_eq!(client.raw_command("STARTTLS").await.unwrap().code, 503);
    client.authenticate_plain("test", "test").await.unwrap();
    assert_eq!(
        client
            .create_flow("time.flows.unix.ar", true)
            .await
            .unwrap(),
        "time.flows.unix.ar"
    );
    client.quit().await.unwrap();
}

/// Commands pipelined after STARTTLS in clear text are dropped (RFC 3207).
#[tokio::test]
async fn starttls_discards_injected_commands() {
    let pki = pki();
    let host = tls_host(&pki).await;
    let mut stream = tokio::net::TcpStream::connect(host.fnap).await.unwrap();
    let mut greeting = [0u8; 23];
    stream.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"220 fnaa.unix.ar FNAA\r\n");
    stream.write_all(b"STARTTLS\r\nNOOP\r\n").await.unwrap();
    let mut ready = [0u8; 24];
    stream.read_exact(&mut ready).await.unwrap();
    assert_eq!(&ready, b"220 Ready to start TLS\r\n");
    let connector = tokio_rustls::TlsConnector::from(pki.client.clone());
    let name = rustls::pki_types::ServerName::try_from("fnaa.unix.ar").unwrap();
    let mut tls = connector.connect(name, stream).await.unwrap();
    tls.write_all(b"HELP NOOP\r\n").await.unwrap();
    let mut reply = vec![0u8; 64];
    let count = tls.read(&mut reply).await.unwrap();
    // The first reply inside TLS answers HELP, not the injected NOOP.
    assert!(
        String::from_utf8_lossy(&reply[..count]).starts_with("220 DATA\r\nNOOP\r\n"),
        "{:?}",
        &reply[..count]
    );
}

#[tokio::test]
async fn scram_sha_256() {
    let pki = pki();
    let host = tls_host(&pki).await;
    // In clear text (SCRAM never reveals the password) ...
    let mut client = Client::connect(host.fnap, TIMEOUT, None).await.unwrap();
    client.authenticate_scram("test", "test").await.unwrap();
    assert_eq!(
        client
            .create_flow("scram.flows.unix.ar", false)
            .await
            .unwrap(),
        "scram.flows.unix.ar"
    );
    client.quit().await.unwrap();
    // ... and over TLS.
    let mut client = Client::connect_tls(
        host.fnap_tls.unwrap(),
        "fnaa.unix.ar",
        pki.client.clone(),
        TIMEOUT,
        None,
    )
    .await
    .unwrap();
    client.authenticate_scram("test", "test").await.unwrap();
    client.quit().await.unwrap();

    for (user, password) in [("test", "wrong"), ("nobody", "test")] {
        let mut client = Client::connect(host.fnap, TIMEOUT, None).await.unwrap();
        let failed = client.authenticate_scram(user, password).await;
        assert_eq!(
            failed.as_ref().err().and_then(ClientError::code),
            Some(535),
            "{user}: {failed:?}"
        );
    }
}

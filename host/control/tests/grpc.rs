//! The gRPC admin API: same operations, same authorization.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fakes, TestHost, test_config};
use fnaa_control::config::TlsFiles;
use fnaa_control::grpc::pb;
use fnaa_control::grpc::pb::control_client::ControlClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const TOKEN: &str = "operator-token-0123456789";

fn with_auth<T>(message: T, authorization: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn operator_and_users() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut config = test_config();
    config.grpc.listen = Some("127.0.0.1:0".parse().unwrap());
    config.grpc.admin_token_file = Some(token_file);
    let host = TestHost::start_in(dir, config, Fakes::new(), None, true).await;
    let mut api = ControlClient::connect(format!("http://{}", host.grpc.unwrap()))
        .await
        .unwrap();
    let operator = format!("Bearer {TOKEN}");

    let error = api
        .list_users(tonic::Request::new(pb::Empty {}))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = api
        .list_users(with_auth(pb::Empty {}, "Bearer wrong-token-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    api.add_user(with_auth(
        pb::AddUserRequest {
            name: "alice".into(),
            password: "wonder".into(),
        },
        &operator,
    ))
    .await
    .unwrap();
    let namespace = pb::CreateNamespaceRequest {
        name: "flows.alice.ar".into(),
        owner: "alice".into(),
    };
    api.create_namespace(with_auth(namespace, &operator))
        .await
        .unwrap();
    let users = api
        .list_users(with_auth(pb::Empty {}, &operator))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(
        users
            .iter()
            .any(|u| u.name == "alice" && u.namespaces == ["flows.alice.ar"])
    );

    let alice = basic("alice", "wonder");
    let error = api
        .list_users(with_auth(pb::Empty {}, &alice))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = api
        .list_users(with_auth(pb::Empty {}, &basic("alice", "nope")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    let flow = api
        .create_flow(with_auth(
            pb::CreateFlowRequest {
                name: "time.flows.alice.ar".into(),
                visibility: 0,
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (flow.broker_type.as_str(), flow.topic.as_str()),
        ("kafka", "time.flows.alice.ar")
    );
    for (name, code) in [
        ("x.flows.unix.ar", Code::PermissionDenied),
        ("bad_name.flows.alice.ar", Code::InvalidArgument),
        ("time.flows.alice.ar", Code::AlreadyExists),
    ] {
        let error = api
            .create_flow(with_auth(
                pb::CreateFlowRequest {
                    name: name.into(),
                    visibility: 0,
                },
                &alice,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{name}");
    }

    // test's private flow is not alice's to read.
    let mut raw = host.logged_in().await;
    raw.exchange(
        "CREATE FLOW secret.flows.unix.ar",
        "220 OK secret.flows.unix.ar",
    )
    .await;
    let error = api
        .describe_flow(with_auth(
            pb::NameRequest {
                name: "secret.flows.unix.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let described = api
        .describe_flow(with_auth(
            pb::NameRequest {
                name: "secret.flows.unix.ar".into(),
            },
            &operator,
        ))
        .await
        .unwrap();
    assert_eq!(described.into_inner().owner, "test");

    let subscription = api
        .subscribe(with_auth(
            pb::SubscribeRequest {
                source: "time.flows.alice.ar".into(),
                local: "copy.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(subscription.id.ends_with(".time.flows.alice.ar"));
    let listed = api
        .list_subscriptions(with_auth(pb::Empty {}, &alice))
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].fnaa.as_str(), listed[0].state.as_str()),
        ("", "")
    );

    // A flow of another organisation: the publisher's FNAA and the state.
    host.fakes.peers.offer(
        &fnaa_control::names::DnsName::parse("time.flows.remote.example").unwrap(),
        fnaa_control::store::BrokerBinding {
            broker_type: "mqtt".into(),
            topic: "time.flows.remote.example".into(),
            servers: vec!["mqtt.remote.example:1883".into()],
            tls: false,
        },
    );
    let remote = api
        .subscribe(with_auth(
            pb::SubscribeRequest {
                source: "time.flows.remote.example".into(),
                local: "copy.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(remote.fnaa, "fnaa.remote.example");
    assert_eq!(remote.state, "active");
    api.unsubscribe(with_auth(pb::NameRequest { name: remote.id }, &alice))
        .await
        .unwrap();

    let processor = pb::CreateProcessorRequest {
        name: "p.flows.alice.ar".into(),
        plugin: "convert".into(),
        plugin_version: "1.0.0".into(),
        inputs: vec!["time.flows.alice.ar".into()],
        outputs: vec!["copy.flows.alice.ar".into()],
        config_json: r#"{"unit":"C"}"#.into(),
    };
    api.create_processor(with_auth(processor, &alice))
        .await
        .unwrap();
    let paused = api
        .pause_processor(with_auth(
            pb::NameRequest {
                name: "p.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap();
    assert_eq!(paused.into_inner().state, "paused");
    let error = api
        .pause_processor(with_auth(
            pb::NameRequest {
                name: "p.flows.alice.ar".into(),
            },
            &basic("test", "test"),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let update = pb::UpdateProcessorRequest {
        name: "p.flows.alice.ar".into(),
        plugin: String::new(),
        plugin_version: String::new(),
        config_json: r#"{"unit":"K"}"#.into(),
    };
    api.update_processor(with_auth(update, &alice))
        .await
        .unwrap();
    let described = api
        .describe_processor(with_auth(
            pb::NameRequest {
                name: "p.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (described.config_json.as_str(), described.status.as_str()),
        (r#"{"unit":"K"}"#, "paused")
    );
    api.resume_processor(with_auth(
        pb::NameRequest {
            name: "p.flows.alice.ar".into(),
        },
        &alice,
    ))
    .await
    .unwrap();
    api.delete_processor(with_auth(
        pb::NameRequest {
            name: "p.flows.alice.ar".into(),
        },
        &alice,
    ))
    .await
    .unwrap();
    api.unsubscribe(with_auth(
        pb::NameRequest {
            name: subscription.id,
        },
        &alice,
    ))
    .await
    .unwrap();
    let error = api
        .delete_namespace(with_auth(
            pb::NameRequest {
                name: "flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    let flows = api
        .list_flows(with_auth(
            pb::ListFlowsRequest {
                namespace: String::new(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(flows.flows.len(), 2);
}

/// A CA and a certificate for `fnaa.unix.ar` signed by it, made by the
/// test: (CA PEM, certificate PEM, private key PEM).
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "fnaa test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["fnaa.unix.ar".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// A gRPC client over TLS that trusts `ca_pem` and expects `fnaa.unix.ar`.
async fn tls_client(
    address: std::net::SocketAddr,
    ca_pem: &str,
) -> Result<ControlClient<Channel>, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("fnaa.unix.ar");
    let channel = Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    Ok(ControlClient::new(channel))
}

/// Whether one `ListNamespaces` with `client` fails (at connection or at
/// the call), within 10 s.
async fn call_fails(
    client: Result<ControlClient<Channel>, tonic::transport::Error>,
    authorization: &str,
) -> bool {
    let call = async {
        match client {
            Ok(mut api) => api
                .list_namespaces(with_auth(pb::Empty {}, authorization))
                .await
                .is_err(),
            Err(_) => true,
        }
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call neither succeeded nor failed in time")
}

#[tokio::test]
async fn tls_listener() {
    let (ca_pem, cert_pem, key_pem) = pki();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("grpc.crt"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("grpc.key"), &key_pem).unwrap();
    let mut config = test_config();
    config.grpc.listen = Some("127.0.0.1:0".parse().unwrap());
    config.grpc.tls = Some(TlsFiles {
        certificate: dir.path().join("grpc.crt"),
        private_key: dir.path().join("grpc.key"),
    });
    config.fnap.login_failures_before_throttle = 1;
    let host = TestHost::start_in(dir, config, Fakes::new(), None, true).await;
    let address = host.grpc.unwrap();
    let test = basic("test", "test");

    // A client that trusts the CA gets through.
    let mut api = tls_client(address, &ca_pem).await.unwrap();
    let namespaces = api
        .list_namespaces(with_auth(pb::Empty {}, &test))
        .await
        .unwrap()
        .into_inner()
        .namespaces;
    assert_eq!(namespaces.len(), 1);
    assert_eq!(namespaces[0].name, "flows.unix.ar");

    // A clear-text client does not.
    let plain = ControlClient::connect(format!("http://{address}")).await;
    assert!(call_fails(plain, &test).await, "clear text got through");
    // Nor does a client that trusts another CA.
    let (other_ca, _, _) = pki();
    assert!(
        call_fails(tls_client(address, &other_ca).await, &test).await,
        "an untrusted certificate was accepted"
    );

    // Failed logins over TLS are counted by address too.
    let error = api
        .list_namespaces(with_auth(pb::Empty {}, &basic("test", "wrong")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = api
        .list_namespaces(with_auth(pb::Empty {}, &test))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn bad_tls_files_are_named() {
    let (_, cert_pem, _) = pki();
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("grpc.crt");
    std::fs::write(&certificate, cert_pem).unwrap();
    let start = |tls: TlsFiles| {
        let mut config = test_config();
        config.grpc.listen = Some("127.0.0.1:0".parse().unwrap());
        config.grpc.tls = Some(tls);
        config.store.path = dir.path().join("state.redb");
        async move {
            let store = Arc::new(fnaa_control::store::RedbStore::open(&config.store.path).unwrap());
            fnaa_control::ControlPlane::start_with_store(
                &config,
                store,
                Fakes::new().backends(),
                None,
            )
            .await
            .map(drop)
            .unwrap_err()
            .to_string()
        }
    };

    let missing = dir.path().join("missing.crt");
    let error = start(TlsFiles {
        certificate: missing.clone(),
        private_key: dir.path().join("grpc.key"),
    })
    .await;
    assert!(error.contains("[grpc.tls]"), "{error}");
    assert!(error.contains(&missing.display().to_string()), "{error}");

    // A key file without a key (here: the certificate) is named as well.
    let error = start(TlsFiles {
        certificate: certificate.clone(),
        private_key: certificate.clone(),
    })
    .await;
    assert!(error.contains("no private key"), "{error}");
    assert!(
        error.contains(&certificate.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut config = test_config();
    config.grpc.listen = Some("127.0.0.1:0".parse().unwrap());
    config.grpc.admin_token_file = Some(token_file);
    config.fnap.login_failures_before_throttle = 3;
    config.fnap.login_failure_delay_ms = 200;
    let host = TestHost::start_in(dir, config, Fakes::new(), None, true).await;
    let mut api = ControlClient::connect(format!("http://{}", host.grpc.unwrap()))
        .await
        .unwrap();

    // Failures are answered after the delay.
    for authorization in [basic("test", "wrong"), basic("nobody", "test")] {
        let started = Instant::now();
        let error = api
            .list_namespaces(with_auth(pb::Empty {}, &authorization))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
    // Malformed credentials are refused without counting.
    let error = api
        .list_namespaces(with_auth(pb::Empty {}, "Basic !!!"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    api.list_namespaces(with_auth(pb::Empty {}, &basic("test", "test")))
        .await
        .unwrap();

    // The third failure, over FNAP from the same address, counts with them.
    let mut raw = host.raw().await;
    raw.expect("220 fnaa.unix.ar FNAA").await;
    raw.code("AUTHENTICATE PLAIN AHRlc3QAd3Jvbmc=", 535).await;

    // Now even the right password waits, on both front ends, and so does
    // the operator.
    let error = api
        .list_namespaces(with_auth(pb::Empty {}, &basic("test", "test")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert!(
        error.message().contains("too many failed logins"),
        "{error:?}"
    );
    let error = api
        .list_users(with_auth(pb::Empty {}, &format!("Bearer {TOKEN}")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    raw.code("AUTHENTICATE PLAIN AHRlc3QAdGVzdA==", 454).await;
}

//! Publishing and resolving against a real BIND9 (Debian `bind9`), checked
//! with the real `dig` (Debian `bind9-dnsutils`). Each test starts its own
//! named on a free loopback port with an inline-signed (DNSSEC) zone.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fnaa_fns::{
    BrokerKind, BrokerRecords, FlowRecords, FlowRegistry, FlowUri, FnsConfig, FnsResolver,
    Namespace, NamespaceRecords, RecordType, RegistryError, ResolveError, ResponseCode,
    Rfc2136Config, Rfc2136Registry, ServiceEndpoint, TsigAlgorithmName, TsigConfig, TsigKey,
    TsigSecret,
};
use support::{ANNEX_B_RECORDS, Named, TSIG_KEY_NAME, Zone, dig, dig_data, eventually, free_port};

const NAMESPACE: &str = "flows.unix.ar";

fn registry(named: &Named) -> Rfc2136Registry {
    let config: Rfc2136Config = toml::from_str(&format!(
        "server = \"{}\"\nzones = [\"{NAMESPACE}\"]\ntimeout_ms = 3000\n[tsig]\nkey_file = \"{}\"",
        named.address,
        named.key_file.display()
    ))
    .expect("rfc2136 config");
    Rfc2136Registry::new(&config).expect("registry")
}

fn time_flow() -> FlowRecords {
    let uri = FlowUri::parse("flow://time.flows.unix.ar").expect("uri");
    let mut flow = FlowRecords::new(uri, ServiceEndpoint::new("fnaa.unix.ar", 61000)).with_broker(
        BrokerRecords {
            kind: BrokerKind::Kafka,
            tls: false,
            endpoints: vec![
                ServiceEndpoint::new("kf1.unix.ar", 9092).with_priority(10, 0),
                ServiceEndpoint::new("kf2.unix.ar", 9093).with_priority(20, 0),
            ],
            topic: None,
        },
    );
    flow.fnaa_tls = true;
    flow.ttl = 60;
    flow
}

fn resolver(named: &Named) -> FnsResolver {
    FnsResolver::with_nameserver(named.address).expect("resolver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_flow_is_signed_visible_to_dig_and_resolver_then_withdrawn() {
    let named = Named::start(&[Zone::dynamic(NAMESPACE)]);
    let registry = registry(&named);
    let flow = time_flow();
    registry.publish_flow(&flow).await.expect("publish");

    // The real dig sees every record.
    assert_eq!(
        dig_data(named.address, "time.flows.unix.ar", "PTR"),
        ["_flow._tcp.time.flows.unix.ar."]
    );
    assert_eq!(
        dig_data(named.address, "_flow._tcp.time.flows.unix.ar", "SRV"),
        ["0 0 61000 fnaa.unix.ar."]
    );
    assert_eq!(
        dig_data(named.address, "_flow._tcp.time.flows.unix.ar", "TXT"),
        ["\"tls\""]
    );
    let mut brokers = dig_data(named.address, "_queue._flow._tcp.time.flows.unix.ar", "SRV");
    brokers.sort();
    assert_eq!(
        brokers,
        ["10 0 9092 kf1.unix.ar.", "20 0 9093 kf2.unix.ar."]
    );
    assert_eq!(
        dig_data(named.address, "_queue._flow._tcp.time.flows.unix.ar", "TXT"),
        ["\"broker-type=kafka\""]
    );

    // BIND signs what was added (inline signing, dnssec-policy default).
    let signed = eventually(Duration::from_secs(10), || {
        dig(
            named.address,
            "_flow._tcp.time.flows.unix.ar",
            "SRV",
            &["+dnssec"],
        )
        .iter()
        .any(|record| record.record_type == "RRSIG" && record.data.starts_with("SRV "))
    });
    assert!(signed, "no RRSIG for the SRV record:\n{}", named.log());
    let dnskey = dig_data(named.address, NAMESPACE, "DNSKEY");
    assert!(!dnskey.is_empty(), "the zone has no DNSKEY");

    // Our resolver reads the same.
    let resolver = resolver(&named);
    let location = resolver
        .resolve_flow(&flow.uri)
        .await
        .expect("resolve the flow");
    assert_eq!(location.fnaa.host, "fnaa.unix.ar");
    assert_eq!(location.fnaa.port, 61000);
    assert!(location.fnaa.tls);
    assert_eq!(location.fnaa.service_name, "_flow._tcp.time.flows.unix.ar");
    assert!(location.ttl <= 60);
    let broker = location.broker.expect("a broker");
    assert_eq!(broker.kind, BrokerKind::Kafka);
    assert!(!broker.tls);
    assert_eq!(broker.topic, "time.flows.unix.ar");
    let order: Vec<_> = broker
        .targets
        .iter()
        .map(|t| (t.host.as_str(), t.port))
        .collect();
    assert_eq!(order, [("kf1.unix.ar", 9092), ("kf2.unix.ar", 9093)]);

    // Republishing replaces instead of accumulating.
    let mut moved = flow.clone();
    moved.fnaa.port = 61001;
    registry.publish_flow(&moved).await.expect("republish");
    assert_eq!(
        dig_data(named.address, "_flow._tcp.time.flows.unix.ar", "SRV"),
        ["0 0 61001 fnaa.unix.ar."]
    );

    // Withdrawal removes everything, for dig and for the resolver.
    registry.withdraw_flow(&flow.uri).await.expect("withdraw");
    for (name, record_type) in [
        ("time.flows.unix.ar", "PTR"),
        ("_flow._tcp.time.flows.unix.ar", "SRV"),
        ("_flow._tcp.time.flows.unix.ar", "TXT"),
        ("_queue._flow._tcp.time.flows.unix.ar", "SRV"),
        ("_queue._flow._tcp.time.flows.unix.ar", "TXT"),
    ] {
        assert!(
            dig_data(named.address, name, record_type).is_empty(),
            "{name} {record_type} survived the withdrawal"
        );
    }
    resolver.clear_cache();
    match resolver.resolve_flow_fnaa(&flow.uri).await {
        Err(ResolveError::NxDomain { name, record_type }) => {
            assert_eq!(name, "time.flows.unix.ar");
            assert_eq!(record_type, RecordType::PTR);
        }
        other => panic!("expected NXDOMAIN for the withdrawn flow, got {other:?}"),
    }
    // Withdrawing again is harmless.
    registry
        .withdraw_flow(&flow.uri)
        .await
        .expect("withdraw twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annex_b_zone_resolves_to_the_thesis_values() {
    let named = Named::start(&[Zone::fixed("syndeno.com", ANNEX_B_RECORDS)]);
    let uri = FlowUri::parse("flow://notifications.calendar.people.syndeno.com").expect("uri");

    // dig, as in Annex B.
    assert_eq!(
        dig_data(named.address, uri.fqdn(), "PTR"),
        ["_flow._tcp.notifications.calendar.people.syndeno.com."]
    );
    assert_eq!(
        dig_data(
            named.address,
            "_flow._tcp.notifications.calendar.people.syndeno.com",
            "SRV"
        ),
        ["30 30 65432 fnaa.syndeno.com."]
    );

    let location = resolver(&named)
        .resolve_flow(&uri)
        .await
        .expect("resolve Annex B");
    assert_eq!(location.fnaa.host, "fnaa.syndeno.com");
    assert_eq!(location.fnaa.port, 65432);
    assert!(location.fnaa.tls);
    assert_eq!(
        location.fnaa.addresses,
        ["208.68.163.200".parse::<std::net::IpAddr>().expect("ip")]
    );
    let broker = location.broker.expect("the Kafka broker");
    assert_eq!(broker.kind, BrokerKind::Kafka);
    assert!(broker.tls);
    assert_eq!(broker.targets[0].host, "kafka.syndeno.com");
    assert_eq!(broker.targets[0].port, 9092);
    assert_eq!(
        broker.targets[0].addresses,
        ["208.68.163.218".parse::<std::net::IpAddr>().expect("ip")]
    );
    assert_eq!(location.ttl, 875);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_and_wrongly_signed_updates_are_refused_and_reported() {
    let named = Named::start(&[Zone::dynamic(NAMESPACE)]);
    let flow = time_flow();
    let zones = [NAMESPACE.to_owned()];

    let unsigned = Rfc2136Registry::with_key(named.address, &zones, None).expect("registry");
    let error = unsigned
        .publish_flow(&flow)
        .await
        .expect_err("unsigned must fail");
    assert_eq!(
        error.refused_rcode(),
        Some(ResponseCode::Refused),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("REFUSED") && text.contains("unsigned"),
        "{text}"
    );

    let wrong_secret = TsigKey {
        name: TSIG_KEY_NAME.to_owned(),
        algorithm: TsigAlgorithmName::HmacSha256,
        secret: TsigSecret::new(vec![7; 32]),
    };
    let forged =
        Rfc2136Registry::with_key(named.address, &zones, Some(wrong_secret)).expect("registry");
    let error = forged
        .publish_flow(&flow)
        .await
        .expect_err("bad secret must fail");
    assert!(
        matches!(&error, RegistryError::UpdateRefused { rcode: ResponseCode::NotAuth, tsig_error: Some(tsig), .. } if tsig == "BADSIG"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("NOTAUTH (TSIG error BADSIG)"),
        "{error}"
    );

    let unknown_key = TsigConfig {
        name: Some("not-a-key-of-this-server".to_owned()),
        secret: Some(TsigSecret::new(vec![7; 32])),
        ..TsigConfig::default()
    }
    .key()
    .expect("key");
    let stranger =
        Rfc2136Registry::with_key(named.address, &zones, Some(unknown_key)).expect("registry");
    let error = stranger
        .withdraw_flow(&flow.uri)
        .await
        .expect_err("unknown key must fail");
    assert!(
        matches!(&error, RegistryError::UpdateRefused { tsig_error: Some(tsig), .. } if tsig == "BADKEY"),
        "{error:?}"
    );

    // Nothing of the flow reached the zone.
    assert!(dig_data(named.address, "time.flows.unix.ar", "PTR").is_empty());
    assert!(dig_data(named.address, "_flow._tcp.time.flows.unix.ar", "SRV").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_refused_flow_leaves_no_record_behind() {
    // The key may only touch PTR and SRV records here: the flow's TXT records
    // (and its type-ANY deletions) are not allowed, so BIND refuses the whole
    // update, and none of the flow's records may remain.
    let restricted = Zone {
        origin: NAMESPACE.to_owned(),
        records: String::new(),
        update_policy: Some(format!("grant {TSIG_KEY_NAME} zonesub PTR SRV;")),
    };
    let named = Named::start(&[restricted]);
    let error = registry(&named)
        .publish_flow(&time_flow())
        .await
        .expect_err("TXT is not allowed");
    assert_eq!(
        error.refused_rcode(),
        Some(ResponseCode::Refused),
        "{error}"
    );
    assert!(dig_data(named.address, "time.flows.unix.ar", "PTR").is_empty());
    assert!(dig_data(named.address, "_flow._tcp.time.flows.unix.ar", "SRV").is_empty());
    assert!(dig_data(named.address, "_queue._flow._tcp.time.flows.unix.ar", "SRV").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_fnaa_is_discovered_by_dns_sd() {
    let named = Named::start(&[Zone::dynamic(NAMESPACE)]);
    let registry = registry(&named);
    let namespace = Namespace::parse(NAMESPACE).expect("namespace");
    let mut records = NamespaceRecords::new(
        namespace.clone(),
        ServiceEndpoint::new("fnaa.flows.unix.ar", 61000),
    );
    records.tls = true;
    records.addresses = vec!["127.0.0.1".parse().expect("ip")];
    registry
        .register_namespace(&records)
        .await
        .expect("register");

    assert_eq!(
        dig_data(named.address, "_fnaa._tcp.flows.unix.ar", "PTR"),
        ["fnaa._fnaa._tcp.flows.unix.ar."]
    );
    let resolver = resolver(&named);
    let found = resolver
        .resolve_namespace_fnaa(&namespace)
        .await
        .expect("discover the FNAA");
    assert_eq!(found.instance.as_deref(), Some("fnaa"));
    assert_eq!(
        (found.fnaa.host.as_str(), found.fnaa.port),
        ("fnaa.flows.unix.ar", 61000)
    );
    assert!(found.fnaa.tls);
    assert_eq!(
        found.fnaa.addresses,
        ["127.0.0.1".parse::<std::net::IpAddr>().expect("ip")]
    );

    registry
        .unregister_namespace(&namespace, "fnaa")
        .await
        .expect("unregister");
    resolver.clear_cache();
    let error = resolver
        .resolve_namespace_fnaa(&namespace)
        .await
        .expect_err("no FNAA any more");
    assert!(error.is_not_found(), "{error}");
    assert_eq!(error.name(), Some("_fnaa._tcp.flows.unix.ar"), "{error}");
}

/// examples/bind9, read from the repository.
fn example_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/bind9")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bind9_example_configuration_accepts_signed_updates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    std::fs::create_dir(root.join("keys")).expect("keys directory");

    // The example's key script, writing into the temporary directory.
    let key_file = root.join("fnaa-update.key");
    let script = Command::new("sh")
        .arg(example_file("generate-key.sh"))
        .arg(&key_file)
        .arg(TSIG_KEY_NAME)
        .output()
        .expect("run generate-key.sh");
    assert!(
        script.status.success(),
        "generate-key.sh failed: {script:?}"
    );

    // The example's named.conf snippet and zone, with its paths moved here.
    let root_text = root.display().to_string();
    let snippet = std::fs::read_to_string(example_file("named.conf.fnaa"))
        .expect("examples/bind9/named.conf.fnaa")
        .replace("/etc/bind/fnaa-update.key", &key_file.display().to_string())
        .replace("/var/lib/bind", &root_text);
    std::fs::copy(
        example_file("db.people.syndeno.com"),
        root.join("db.people.syndeno.com"),
    )
    .expect("copy the example zone");
    std::fs::write(root.join("named.conf.fnaa"), snippet).expect("write the snippet");
    let port = free_port();
    let conf = root.join("named.conf");
    std::fs::write(
        &conf,
        format!(
            "{}include \"{root_text}/named.conf.fnaa\";\n",
            Named::options(&root, port)
        ),
    )
    .expect("write named.conf");
    let named = Named::launch(dir, &conf, port, key_file.clone(), &["people.syndeno.com"]);

    // The example's [dns] section, pointed at this server and key.
    #[derive(serde::Deserialize)]
    struct HostConfig {
        dns: FnsConfig,
    }
    let toml_text = std::fs::read_to_string(example_file("fnaa.toml"))
        .expect("examples/bind9/fnaa.toml")
        .replace("192.0.2.53", &named.address.to_string())
        .replace("/etc/fnaa/fnaa-update.key", &key_file.display().to_string());
    let config: HostConfig = toml::from_str(&toml_text).expect("the example [dns] section");
    let registry = config.dns.registry().await.expect("registry");
    let resolver = config.dns.resolver().expect("resolver");

    let uri = FlowUri::parse("flow://notifications.calendar.people.syndeno.com").expect("uri");
    let mut flow = FlowRecords::new(uri.clone(), ServiceEndpoint::new("fnaa.syndeno.com", 65432))
        .with_broker(BrokerRecords {
            kind: BrokerKind::Kafka,
            tls: true,
            endpoints: vec![ServiceEndpoint::new("kafka.syndeno.com", 9092).with_priority(30, 30)],
            topic: None,
        });
    flow.fnaa = flow.fnaa.with_priority(30, 30);
    flow.fnaa_tls = true;
    flow.ttl = config.dns.ttl;
    registry
        .publish_flow(&flow)
        .await
        .expect("publish through the example");

    assert_eq!(
        dig_data(
            named.address,
            "_queue._flow._tcp.notifications.calendar.people.syndeno.com",
            "TXT"
        ),
        ["\"broker-type=kafka tls\""]
    );
    let signed = eventually(Duration::from_secs(10), || {
        dig(named.address, uri.fqdn(), "PTR", &["+dnssec"])
            .iter()
            .any(|record| record.record_type == "RRSIG")
    });
    assert!(signed, "the example zone is not signed:\n{}", named.log());
    let fnaa = resolver.resolve_flow_fnaa(&uri).await.expect("resolve");
    assert_eq!(
        (fnaa.host.as_str(), fnaa.port, fnaa.tls),
        ("fnaa.syndeno.com", 65432, true)
    );
    registry.withdraw_flow(&uri).await.expect("withdraw");
    assert!(dig_data(named.address, uri.fqdn(), "PTR").is_empty());
}

/// The FNAA's host name, published by one signed update into the
/// configured zone that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fnaa_host_address_is_published_by_update() {
    let named = Named::start(&[Zone::dynamic(NAMESPACE)]);
    let registry = registry(&named);
    let host =
        fnaa_fns::HostRecords::new("fnaa.flows.unix.ar", vec!["127.0.0.1".parse().expect("ip")]);
    assert_eq!(
        registry.publish_host(&host).await.expect("publish"),
        Some(NAMESPACE.to_owned())
    );
    assert!(eventually(Duration::from_secs(5), || dig_data(
        named.address,
        "fnaa.flows.unix.ar",
        "A"
    ) == ["127.0.0.1"]));
    let outside =
        fnaa_fns::HostRecords::new("fnaa.unix.ar", vec!["127.0.0.1".parse().expect("ip")]);
    assert_eq!(
        registry.publish_host(&outside).await.expect("nothing"),
        None
    );
}

//! Publishing and resolving against the embedded authoritative server,
//! checked with the real `dig` (Debian `bind9-dnsutils`) and our resolver.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use fnaa_fns::{
    BrokerKind, BrokerRecords, EmbeddedConfig, EmbeddedRegistry, FlowRecords, FlowRegistry,
    FlowUri, FnsConfig, FnsResolver, Namespace, NamespaceRecords, RecordType, RegistryError,
    ResolveError, ResolverOptions, ServiceEndpoint, ZoneFileConfig,
};
use support::{ANNEX_B_RECORDS, dig, dig_data, require_tool};

async fn start(config: EmbeddedConfig) -> EmbeddedRegistry {
    require_tool("dig", "bind9-dnsutils");
    EmbeddedRegistry::start(&EmbeddedConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..config
    })
    .await
    .expect("start the embedded server")
}

/// A resolver without cache, so that every check asks the server.
fn uncached(server: SocketAddr) -> FnsResolver {
    FnsResolver::new(ResolverOptions {
        nameserver: Some(fnaa_fns::NameserverAddr(server)),
        cache_size: 0,
        timeout: Duration::from_secs(2),
        attempts: 1,
    })
    .expect("resolver")
}

fn mqtt_flow(uri: &str) -> FlowRecords {
    let uri = FlowUri::parse(uri).expect("uri");
    let mut flow = FlowRecords::new(uri, ServiceEndpoint::new("fnaa.people.syndeno.com", 61000))
        .with_broker(BrokerRecords {
            kind: BrokerKind::Mqtt,
            tls: true,
            endpoints: vec![ServiceEndpoint::new("mqtt.people.syndeno.com", 8883)],
            topic: Some("calendar/notifications".to_owned()),
        });
    flow.fnaa_tls = true;
    flow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_flow_is_visible_at_once_then_withdrawn() {
    let server = start(EmbeddedConfig::default()).await;
    let address = server.local_addr();
    let flow = mqtt_flow("flow://notifications.calendar.people.syndeno.com");
    server.publish_flow(&flow).await.expect("publish");
    // The namespace zone was created on first use.
    assert_eq!(server.zones().await, ["people.syndeno.com"]);

    assert_eq!(
        dig_data(address, "notifications.calendar.people.syndeno.com", "PTR"),
        ["_flow._tcp.notifications.calendar.people.syndeno.com."]
    );
    let srv = dig(
        address,
        "_flow._tcp.notifications.calendar.people.syndeno.com",
        "SRV",
        &["+tcp"],
    );
    assert_eq!(srv.len(), 1, "{srv:?}");
    assert_eq!(srv[0].data, "0 0 61000 fnaa.people.syndeno.com.");
    assert_eq!(srv[0].ttl, 300);
    assert_eq!(
        dig_data(
            address,
            "_queue._flow._tcp.notifications.calendar.people.syndeno.com",
            "TXT"
        ),
        ["\"broker-type=mqtt tls topic=calendar/notifications\""]
    );

    let resolver = uncached(address);
    let location = resolver.resolve_flow(&flow.uri).await.expect("resolve");
    assert_eq!(location.fnaa.host, "fnaa.people.syndeno.com");
    assert_eq!(location.fnaa.port, 61000);
    assert!(location.fnaa.tls);
    let broker = location.broker.expect("broker");
    assert_eq!(broker.kind, BrokerKind::Mqtt);
    assert!(broker.tls);
    assert_eq!(broker.topic, "calendar/notifications");
    assert_eq!(broker.targets[0].port, 8883);

    // A sub-flow (a per-subscriber copy) outlives its origin's withdrawal.
    let copy = mqtt_flow("flow://ksdj898.notifications.calendar.people.syndeno.com");
    server.publish_flow(&copy).await.expect("publish the copy");
    server.withdraw_flow(&flow.uri).await.expect("withdraw");
    assert!(dig_data(address, "notifications.calendar.people.syndeno.com", "PTR").is_empty());
    assert!(
        dig_data(
            address,
            "_flow._tcp.notifications.calendar.people.syndeno.com",
            "SRV"
        )
        .is_empty()
    );
    match resolver.resolve_flow_fnaa(&flow.uri).await {
        // The flow FQDN may stay as an empty non-terminal above the copy;
        // either way the withdrawn flow no longer resolves.
        Err(ResolveError::NxDomain { name, record_type })
        | Err(ResolveError::NoRecords { name, record_type }) => {
            assert!(
                name.ends_with("notifications.calendar.people.syndeno.com"),
                "{name}"
            );
            assert!(matches!(record_type, RecordType::PTR | RecordType::SRV));
        }
        other => panic!("the withdrawn flow still resolves: {other:?}"),
    }
    let copy_fnaa = resolver
        .resolve_flow_fnaa(&copy.uri)
        .await
        .expect("the copy resolves");
    assert_eq!(copy_fnaa.port, 61000);

    server
        .withdraw_flow(&copy.uri)
        .await
        .expect("withdraw the copy");
    match resolver.resolve_flow_fnaa(&copy.uri).await {
        Err(ResolveError::NxDomain { name, .. }) => {
            assert_eq!(name, "ksdj898.notifications.calendar.people.syndeno.com");
        }
        other => panic!("expected NXDOMAIN, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annex_b_zone_file_resolves_to_the_thesis_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("syndeno.com.db");
    std::fs::write(
        &path,
        format!(
            "$ORIGIN syndeno.com.\n$TTL 3600\n\
             @ IN SOA ns1.syndeno.com. hostmaster.syndeno.com. 1 3600 600 604800 60\n\
             @ IN NS ns1.syndeno.com.\n{ANNEX_B_RECORDS}\n\
             ; a flow whose service has no SRV record\n\
             broken.people IN PTR _flow._tcp.broken.people.syndeno.com.\n\
             _flow._tcp.broken.people IN TXT \"tls\"\n"
        ),
    )
    .expect("zone file");
    let server = start(EmbeddedConfig {
        zone_files: vec![ZoneFileConfig {
            origin: "syndeno.com".to_owned(),
            path,
        }],
        create_zones: false,
        ..EmbeddedConfig::default()
    })
    .await;
    let resolver = uncached(server.local_addr());

    let uri = FlowUri::parse("flow://notifications.calendar.people.syndeno.com").expect("uri");
    let location = resolver.resolve_flow(&uri).await.expect("resolve Annex B");
    assert_eq!(location.fnaa.host, "fnaa.syndeno.com");
    assert_eq!(location.fnaa.port, 65432);
    assert!(location.fnaa.tls);
    assert_eq!(
        location.fnaa.addresses,
        ["208.68.163.200".parse::<IpAddr>().expect("ip")]
    );
    let broker = location.broker.expect("broker");
    assert_eq!(broker.kind, BrokerKind::Kafka);
    assert!(broker.tls);
    assert_eq!(
        (broker.targets[0].host.as_str(), broker.targets[0].port),
        ("kafka.syndeno.com", 9092)
    );
    assert_eq!(
        broker.targets[0].addresses,
        ["208.68.163.218".parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(location.ttl, 875);

    // Errors tell NXDOMAIN from a missing SRV, naming what was asked.
    let missing = FlowUri::parse("flow://absent.people.syndeno.com").expect("uri");
    match resolver.resolve_flow_fnaa(&missing).await {
        Err(error @ ResolveError::NxDomain { .. }) => {
            assert_eq!(error.name(), Some("absent.people.syndeno.com"));
            assert!(error.to_string().contains("NXDOMAIN"), "{error}");
        }
        other => panic!("expected NXDOMAIN, got {other:?}"),
    }
    let broken = FlowUri::parse("flow://broken.people.syndeno.com").expect("uri");
    match resolver.resolve_flow_fnaa(&broken).await {
        Err(ResolveError::NoRecords { name, record_type }) => {
            assert_eq!(name, "_flow._tcp.broken.people.syndeno.com");
            assert_eq!(record_type, RecordType::SRV);
        }
        other => panic!("expected no SRV, got {other:?}"),
    }

    // Without create_zones, a namespace nobody serves is an error.
    let elsewhere = mqtt_flow("flow://a.flows.example.org");
    let error = server.publish_flow(&elsewhere).await.expect_err("no zone");
    assert!(matches!(error, RegistryError::NoZone { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_registration_is_discoverable() {
    let server = start(EmbeddedConfig {
        zones: vec!["people.syndeno.com".to_owned()],
        nameserver: Some("ns1.people.syndeno.com".to_owned()),
        nameserver_addresses: vec!["127.0.0.1".parse().expect("ip")],
        ..EmbeddedConfig::default()
    })
    .await;
    let address = server.local_addr();
    assert_eq!(
        dig_data(address, "people.syndeno.com", "NS"),
        ["ns1.people.syndeno.com."]
    );
    assert_eq!(
        dig_data(address, "ns1.people.syndeno.com", "A"),
        ["127.0.0.1"]
    );

    let namespace = Namespace::parse("people.syndeno.com").expect("namespace");
    let mut records = NamespaceRecords::new(
        namespace.clone(),
        ServiceEndpoint::new("fnaa.people.syndeno.com", address.port()),
    );
    records.addresses = vec!["127.0.0.1".parse().expect("ip")];
    server.register_namespace(&records).await.expect("register");
    assert_eq!(
        dig_data(address, "_services._dns-sd._udp.people.syndeno.com", "PTR"),
        ["_fnaa._tcp.people.syndeno.com."]
    );

    let resolver = uncached(address);
    let found = resolver
        .resolve_namespace_fnaa(&namespace)
        .await
        .expect("discover");
    assert_eq!(found.instance.as_deref(), Some("fnaa"));
    assert_eq!(found.fnaa.host, "fnaa.people.syndeno.com");
    assert_eq!(found.fnaa.port, address.port());
    assert!(!found.fnaa.tls);
    assert_eq!(
        found.fnaa.addresses,
        ["127.0.0.1".parse::<IpAddr>().expect("ip")]
    );

    server
        .unregister_namespace(&namespace, "fnaa")
        .await
        .expect("unregister");
    assert!(resolver.resolve_namespace_fnaa(&namespace).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_builds_the_default_registry_and_resolver() {
    let config: FnsConfig = toml::from_str(
        "nameserver = \"127.0.0.1:9\"\n[registry]\ntype = \"embedded\"\nlisten = \"127.0.0.1:0\"",
    )
    .expect("config");
    let registry = config.registry().await.expect("registry");
    registry
        .publish_flow(&mqtt_flow("flow://a.people.syndeno.com"))
        .await
        .expect("publish through the trait object");
    assert!(config.resolver().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_nameserver_is_a_timeout_naming_the_query() {
    // A UDP socket that never answers, and no TCP listener.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
    let resolver = FnsResolver::new(ResolverOptions {
        nameserver: Some(fnaa_fns::NameserverAddr(
            silent.local_addr().expect("address"),
        )),
        timeout: Duration::from_millis(300),
        attempts: 1,
        cache_size: 0,
    })
    .expect("resolver");
    let uri = FlowUri::parse("flow://time.flows.unix.ar").expect("uri");
    let started = std::time::Instant::now();
    match resolver.resolve_flow_fnaa(&uri).await {
        Err(error @ ResolveError::Timeout { .. }) => {
            assert_eq!(error.name(), Some("time.flows.unix.ar"));
            assert!(error.to_string().contains("PTR"), "{error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The FNAA's own host name: published in the served zone that holds it,
/// replaced on the next publication, not published (nor a zone created)
/// when no served zone holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fnaa_host_address_is_published_where_a_zone_holds_it() {
    let server = start(EmbeddedConfig {
        zones: vec!["unix.ar".to_owned()],
        ..EmbeddedConfig::default()
    })
    .await;
    let address = server.local_addr();
    let host = fnaa_fns::HostRecords::new(
        "fnaa.unix.ar",
        vec!["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")],
    );
    assert_eq!(
        server.publish_host(&host).await.expect("publish"),
        Some("unix.ar".to_owned())
    );
    assert_eq!(dig_data(address, "fnaa.unix.ar", "A"), ["127.0.0.1"]);
    assert_eq!(dig_data(address, "fnaa.unix.ar", "AAAA"), ["::1"]);
    let resolver = uncached(address);
    let mut found = resolver
        .resolve_addresses("fnaa.unix.ar")
        .await
        .expect("resolve");
    found.sort();
    assert_eq!(found.len(), 2);

    let moved = fnaa_fns::HostRecords::new("fnaa.unix.ar", vec!["127.0.0.2".parse().expect("ip")]);
    server.publish_host(&moved).await.expect("publish again");
    assert_eq!(dig_data(address, "fnaa.unix.ar", "A"), ["127.0.0.2"]);
    assert!(dig_data(address, "fnaa.unix.ar", "AAAA").is_empty());

    let outside =
        fnaa_fns::HostRecords::new("fnaa.example.org", vec!["127.0.0.1".parse().expect("ip")]);
    assert_eq!(server.publish_host(&outside).await.expect("nothing"), None);
    assert_eq!(server.zones().await, ["unix.ar"]);
    let error = resolver
        .resolve_addresses("fnaa.example.org")
        .await
        .expect_err("not served");
    assert!(error.to_string().contains("fnaa.example.org"), "{error}");
}

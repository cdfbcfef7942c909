use super::*;

fn annex_b_flow() -> FlowRecords {
    let uri =
        FlowUri::parse("flow://notifications.calendar.people.syndeno.com").expect("valid URI");
    let mut flow = FlowRecords::new(
        uri,
        ServiceEndpoint::new("fnaa.syndeno.com", 65432).with_priority(30, 30),
    )
    .with_broker(BrokerRecords {
        kind: BrokerKind::Kafka,
        tls: true,
        endpoints: vec![ServiceEndpoint::new("kafka.syndeno.com", 9092).with_priority(30, 30)],
        topic: None,
    });
    flow.fnaa_tls = true;
    flow.ttl = 875;
    flow
}

#[test]
fn flow_records_follow_annex_b() {
    let records = annex_b_flow().to_records().expect("records");
    let text: Vec<String> = records.iter().map(ToString::to_string).collect();
    let expected = [
        "notifications.calendar.people.syndeno.com. 875 IN PTR _flow._tcp.notifications.calendar.people.syndeno.com.",
        "_flow._tcp.notifications.calendar.people.syndeno.com. 875 IN SRV 30 30 65432 fnaa.syndeno.com.",
        "_flow._tcp.notifications.calendar.people.syndeno.com. 875 IN TXT tls",
        "_queue._flow._tcp.notifications.calendar.people.syndeno.com. 875 IN SRV 30 30 9092 kafka.syndeno.com.",
        "_queue._flow._tcp.notifications.calendar.people.syndeno.com. 875 IN TXT broker-type=kafka tls",
    ];
    assert_eq!(text.len(), expected.len(), "{text:#?}");
    for (line, expected) in text.iter().zip(expected) {
        // hickory prints TXT strings unquoted; compare without quotes.
        assert_eq!(line.replace('"', ""), expected);
    }
}

#[test]
fn invalid_inputs_are_rejected_before_anything_is_sent() {
    let mut flow = annex_b_flow();
    flow.fnaa.host = "bad host".to_owned();
    assert!(matches!(
        flow.to_records(),
        Err(RecordError::InvalidHost { .. })
    ));
    let mut flow = annex_b_flow();
    if let Some(broker) = flow.broker.as_mut() {
        broker.topic = Some("a topic".to_owned());
    }
    assert!(matches!(
        flow.to_records(),
        Err(RecordError::InvalidTxtValue { key: "topic", .. })
    ));
    let mut flow = annex_b_flow();
    if let Some(broker) = flow.broker.as_mut() {
        broker.endpoints.clear();
    }
    assert!(matches!(
        flow.to_records(),
        Err(RecordError::NoBrokerEndpoint { .. })
    ));
}

#[test]
fn namespace_records_are_dns_sd() {
    let namespace = Namespace::parse("people.syndeno.com").expect("namespace");
    let mut records = NamespaceRecords::new(
        namespace,
        ServiceEndpoint::new("fnaa.people.syndeno.com", 61000),
    );
    records.addresses = vec!["192.0.2.7".parse().expect("address")];
    let zone = fqdn("people.syndeno.com").expect("zone");
    let text: Vec<String> = records
        .to_records(&zone)
        .expect("records")
        .iter()
        .map(|r| r.to_string().replace('"', ""))
        .collect();
    assert_eq!(
        text,
        [
            "_services._dns-sd._udp.people.syndeno.com. 300 IN PTR _fnaa._tcp.people.syndeno.com.",
            "_fnaa._tcp.people.syndeno.com. 300 IN PTR fnaa._fnaa._tcp.people.syndeno.com.",
            "fnaa._fnaa._tcp.people.syndeno.com. 300 IN SRV 0 0 61000 fnaa.people.syndeno.com.",
            "fnaa._fnaa._tcp.people.syndeno.com. 300 IN TXT ",
            "fnaa.people.syndeno.com. 300 IN A 192.0.2.7",
        ]
    );
    records.instance = "two labels".to_owned();
    assert!(matches!(
        records.to_records(&zone),
        Err(RecordError::InvalidInstance { .. })
    ));
}

#[test]
fn txt_attributes_parse_both_forms() {
    let annex_b = TxtAttributes::parse([b"broker-type=kafka tls".as_slice()]);
    let dns_sd = TxtAttributes::parse([b"Broker-Type=kafka".as_slice(), b"tls".as_slice()]);
    for attributes in [&annex_b, &dns_sd] {
        assert_eq!(attributes.get(BROKER_TYPE_KEY), Some(Some("kafka")));
        assert!(attributes.flag(TLS_KEY));
        assert!(!attributes.flag("other"));
    }
    let off = TxtAttributes::parse([b"tls=no".as_slice()]);
    assert!(!off.flag(TLS_KEY));
    let empty = TxtAttributes::parse([b"".as_slice()]);
    assert_eq!(empty.iter().count(), 0);
}

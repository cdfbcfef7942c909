use super::*;

fn parse(input: &str) -> FlowUri {
    match FlowUri::parse(input) {
        Ok(uri) => uri,
        Err(error) => panic!("{input}: {error}"),
    }
}

#[test]
fn annex_c_examples() {
    let uri = parse("flow://notifications.calendar.people.syndeno.com");
    assert_eq!(uri.flow_name(), "notifications.calendar");
    assert_eq!(uri.namespace().as_str(), "people.syndeno.com");
    assert_eq!(uri.fqdn(), "notifications.calendar.people.syndeno.com");

    let uri = parse("flow://created.invoice.finance.syndeno.com");
    assert_eq!(uri.flow_name(), "created.invoice");
    assert_eq!(uri.namespace().as_str(), "finance.syndeno.com");
    assert_eq!(uri.fqdn(), "created.invoice.finance.syndeno.com");

    let uri = parse("flow://flowName.flowCategory.myNameSpace.domain.tld");
    assert_eq!(uri.flow_name(), "flowname.flowcategory");
    assert_eq!(uri.namespace().as_str(), "mynamespace.domain.tld");
}

#[test]
fn section_4_1_2_2_examples() {
    for (input, name, namespace) in [
        (
            "flow://entrances.building.company.com",
            "entrances",
            "building.company.com",
        ),
        (
            "flow://temperature.house.mydomain.com",
            "temperature",
            "house.mydomain.com",
        ),
        (
            "flow://pressure.room1.office.mydomain.com",
            "pressure.room1",
            "office.mydomain.com",
        ),
        (
            "flow://airline.arrivals.flow.airport.com",
            "airline.arrivals",
            "flow.airport.com",
        ),
    ] {
        let uri = parse(input);
        assert_eq!(uri.flow_name(), name, "{input}");
        assert_eq!(uri.namespace().as_str(), namespace, "{input}");
    }
}

#[test]
fn bare_form_of_the_cli_and_normalisation() {
    let bare = parse("time.flows.unix.ar");
    assert_eq!(bare.flow_name(), "time");
    assert_eq!(bare.namespace().as_str(), "flows.unix.ar");
    assert_eq!(bare.to_string(), "flow://time.flows.unix.ar");
    assert_eq!(bare, parse("FLOW://Time.Flows.Unix.AR."));
    assert_eq!(bare, parse("flow://time.flows.unix.ar/"));
    // The per-subscriber copy flow of chapter 7.
    let copy = parse("ksdj898.time.flows.unix.ar");
    assert_eq!(copy.flow_name(), "ksdj898.time");
    let round_trip = parse(&copy.to_string());
    assert_eq!(round_trip, copy);
}

#[test]
fn explicit_namespace() {
    let namespace = Namespace::parse("flows.example.co.uk").unwrap_or_else(|e| panic!("{e}"));
    let uri = FlowUri::parse_in("flow://a.b.flows.example.co.uk", &namespace)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uri.flow_name(), "a.b");
    assert_eq!(uri.namespace(), &namespace);
    assert!(namespace.contains(&uri));
    assert!(matches!(
        FlowUri::parse_in("flow://a.other.co.uk", &namespace),
        Err(FlowUriError::NotInNamespace { .. })
    ));
    assert!(matches!(
        FlowUri::parse_in("flows.example.co.uk", &namespace),
        Err(FlowUriError::NotInNamespace { .. })
    ));
    let built = FlowUri::new("Orders.Created", &namespace).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.fqdn(), "orders.created.flows.example.co.uk");
}

#[test]
fn rejections_name_the_problem() {
    type Check = fn(&FlowUriError) -> bool;
    let cases: [(&str, Check); 11] = [
        ("", |e| matches!(e, FlowUriError::Empty)),
        ("http://a.b.c.d", |e| {
            matches!(e, FlowUriError::Scheme { .. })
        }),
        ("flow://a.b.c.d:9092", |e| {
            matches!(
                e,
                FlowUriError::UnexpectedComponent {
                    component: "port",
                    ..
                }
            )
        }),
        ("flow://a.b.c.d/x", |e| {
            matches!(
                e,
                FlowUriError::UnexpectedComponent {
                    component: "path",
                    ..
                }
            )
        }),
        ("flow://u@a.b.c.d", |e| {
            matches!(
                e,
                FlowUriError::UnexpectedComponent {
                    component: "user",
                    ..
                }
            )
        }),
        ("flow://people.syndeno.com", |e| {
            matches!(
                e,
                FlowUriError::TooFewLabels {
                    found: 3,
                    required: 4,
                    ..
                }
            )
        }),
        ("flow://a..b.c.d", |e| {
            matches!(e, FlowUriError::EmptyLabel { .. })
        }),
        ("flow://a_b.c.d.e", |e| {
            matches!(e, FlowUriError::InvalidCharacter { character: '_', .. })
        }),
        ("flow://ñu.c.d.e", |e| {
            matches!(
                e,
                FlowUriError::InvalidCharacter {
                    character: 'ñ', ..
                }
            )
        }),
        ("flow://-a.c.d.e", |e| {
            matches!(e, FlowUriError::HyphenAtEdge { .. })
        }),
        ("flow://a b.c.d.e", |e| {
            matches!(e, FlowUriError::InvalidCharacter { .. })
        }),
    ];
    for (input, expected) in cases {
        match FlowUri::parse(input) {
            Ok(uri) => panic!("{input:?} parsed as {uri}"),
            Err(error) => assert!(expected(&error), "{input:?}: unexpected {error:?}"),
        }
    }
    let long_label = format!("flow://{}.b.c.d", "x".repeat(64));
    assert!(matches!(
        FlowUri::parse(&long_label),
        Err(FlowUriError::LabelTooLong { len: 64, .. })
    ));
    let long_name = format!("flow://{}b.c.d", "x.".repeat(120));
    assert!(matches!(
        FlowUri::parse(&long_name),
        Err(FlowUriError::TooLong {
            max: MAX_FLOW_FQDN_LEN,
            ..
        })
    ));
    assert!(matches!(
        Namespace::parse("com"),
        Err(FlowUriError::NamespaceTooShort { .. })
    ));
}

#[test]
fn errors_read_well() {
    let error = FlowUri::parse("flow://people.syndeno.com").err();
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("people.syndeno.com"), "{text}");
    assert!(text.contains("flow name"), "{text}");
}

#[test]
fn serde_as_strings() {
    #[derive(Deserialize, Serialize)]
    struct Holder {
        uri: FlowUri,
        namespace: Namespace,
    }
    let holder: Holder =
        toml::from_str("uri = \"flow://a.people.syndeno.com\"\nnamespace = \"people.syndeno.com\"")
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holder.uri.flow_name(), "a");
    assert_eq!(holder.namespace.as_str(), "people.syndeno.com");
    let bad: Result<Holder, _> = toml::from_str("uri = \"a.b\"\nnamespace = \"x.y\"");
    assert!(bad.is_err());
}

/// A name of `len` octets ending in `suffix`, made of labels of at most 63.
fn name_of_length(len: usize, suffix: &str) -> String {
    let mut room = len - suffix.len() - 1;
    let mut labels = Vec::new();
    while room > 63 {
        // A label, its dot, and at least one octet for the next label.
        let label = 63.min(room - 2);
        labels.push("a".repeat(label));
        room -= label + 1;
    }
    labels.push("b".repeat(room));
    let name = format!("{}.{suffix}", labels.join("."));
    assert_eq!(name.len(), len, "{name}");
    name
}

/// The limits are what DNS can hold once the records' own labels are
/// prepended: 235 for flows (`_queue._flow._tcp.`), 230 for namespaces
/// (`_services._dns-sd._udp.`).
#[test]
fn longest_names_fit_their_records() {
    assert_eq!(MAX_FLOW_FQDN_LEN, 235);
    assert_eq!(MAX_NAMESPACE_LEN, 230);
    let namespace = Namespace::parse("flows.unix.ar").unwrap_or_else(|e| panic!("{e}"));
    let longest = name_of_length(MAX_FLOW_FQDN_LEN, "flows.unix.ar");
    let uri = FlowUri::parse_in(&longest, &namespace).unwrap_or_else(|e| panic!("{e}"));
    let names = crate::records::FlowNames::of(&uri).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names.queue.to_ascii().trim_end_matches('.').len(), 253);
    let too_long = name_of_length(MAX_FLOW_FQDN_LEN + 1, "flows.unix.ar");
    assert!(matches!(
        FlowUri::parse_in(&too_long, &namespace),
        Err(FlowUriError::TooLong { max: 235, .. })
    ));

    let longest = name_of_length(MAX_NAMESPACE_LEN, "unix.ar");
    let namespace = Namespace::parse(&longest).unwrap_or_else(|e| panic!("{e}"));
    let names =
        crate::records::NamespaceNames::of(&namespace, "fnaa").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        names.enumeration.to_ascii().trim_end_matches('.').len(),
        253
    );
    let too_long = name_of_length(MAX_NAMESPACE_LEN + 1, "unix.ar");
    assert!(matches!(
        Namespace::parse(&too_long),
        Err(FlowUriError::TooLong { max: 230, .. })
    ));
}

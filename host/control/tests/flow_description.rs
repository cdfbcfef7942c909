//! A flow describes itself (docs/fnap.md 5.8, 5.4): the owner sets schema,
//! rate, retention, terms and contact; DESCRIBE FLOW shows them after the
//! thesis's four lines, to anonymous readers too when the flow is public.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fakes, TestHost, test_config};
use fnaa_control::store::{Flow, FlowDescription};

const THESIS_LINES: [&str; 4] = [
    "flow=time.flows.unix.ar",
    "type=kafka",
    "topic=time.flows.unix.ar",
    "server=kf1.unix.ar:9092",
];

#[tokio::test]
async fn the_owner_describes_a_flow_and_readers_see_it() {
    let mut config = test_config();
    config.fnap.allow_anonymous = true;
    let host = TestHost::start(config.clone()).await;
    host.add_user("emiliano", "secret", "flows.emiliano.ar")
        .await;
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW time.flows.unix.ar PUBLIC",
            "220 OK time.flows.unix.ar",
        )
        .await;
    for (command, reply) in [
        (
            "SET FLOW time.flows.unix.ar SCHEMA https://unix.ar/schemas/time.json",
            "220 OK time.flows.unix.ar schema",
        ),
        (
            "SET FLOW time.flows.unix.ar RATE 1/s",
            "220 OK time.flows.unix.ar rate",
        ),
        (
            "SET FLOW time.flows.unix.ar RETENTION 7d",
            "220 OK time.flows.unix.ar retention",
        ),
        (
            "SET FLOW time.flows.unix.ar TERMS free to use, CC-BY 4.0",
            "220 OK time.flows.unix.ar terms",
        ),
        (
            "SET FLOW time.flows.unix.ar CONTACT mailto:ops@unix.ar",
            "220 OK time.flows.unix.ar contact",
        ),
    ] {
        owner.exchange(command, reply).await;
    }
    let described = owner.data("DESCRIBE FLOW time.flows.unix.ar").await;
    assert_eq!(described[..4], THESIS_LINES);
    assert_eq!(
        described[4..],
        [
            "tls=no",
            "visibility=public",
            "namespace=flows.unix.ar",
            "dataschema=https://unix.ar/schemas/time.json",
            "rate=1/s",
            "retention=7d",
            "terms=free to use, CC-BY 4.0",
            "contact=mailto:ops@unix.ar",
        ]
    );

    // Anonymous readers of a public flow see the same.
    let mut guest = host.anonymous().await;
    assert_eq!(
        guest.data("DESCRIBE FLOW time.flows.unix.ar").await,
        described
    );
    guest
        .code("SET FLOW time.flows.unix.ar RATE 5/s", 551)
        .await;
    let mut other = host.logged_in_as("emiliano", "secret").await;
    other
        .code("SET FLOW time.flows.unix.ar TERMS mine now", 551)
        .await;

    // A copy carries its source's description and cannot change it.
    let copy = other.data("SUBSCRIBE time.flows.unix.ar").await.remove(0);
    let copied = other.data(&format!("DESCRIBE FLOW {copy}")).await;
    assert!(copied.contains(&"rate=1/s".to_owned()), "{copied:?}");
    owner.code(&format!("SET FLOW {copy} RATE 2/s"), 552).await;

    // Inline JSON Schema replaces the URI; `-` removes a setting.
    owner
        .exchange(
            r#"SET FLOW time.flows.unix.ar SCHEMA {"type": "object", "properties": {"time": {"type": "string"}}}"#,
            "220 OK time.flows.unix.ar schema",
        )
        .await;
    owner
        .exchange(
            "SET FLOW time.flows.unix.ar TERMS -",
            "220 OK time.flows.unix.ar terms",
        )
        .await;
    owner
        .code("SET FLOW time.flows.unix.ar RATE fast", 501)
        .await;
    owner
        .code("SET FLOW nope.flows.unix.ar RATE 1/s", 550)
        .await;
    let described = owner.data("DESCRIBE FLOW time.flows.unix.ar").await;
    assert!(
        described.contains(
            &r#"schema={"properties":{"time":{"type":"string"}},"type":"object"}"#.to_owned()
        ),
        "{described:?}"
    );
    assert!(!described.iter().any(|l| l.starts_with("terms=")));
    assert!(!described.iter().any(|l| l.starts_with("dataschema=")));

    // Private flows stay private, description included.
    owner
        .exchange(
            "SET FLOW time.flows.unix.ar PRIVATE",
            "220 OK time.flows.unix.ar private",
        )
        .await;
    guest.code("DESCRIBE FLOW time.flows.unix.ar", 551).await;

    // The description is stored: it survives a restart.
    drop((owner, guest, other));
    let (dir, _) = host.stop().await;
    let host = TestHost::start_in(dir, config, Fakes::new(), None, false).await;
    let mut owner = host.logged_in().await;
    let described = owner.data("DESCRIBE FLOW time.flows.unix.ar").await;
    assert!(
        described.contains(&"retention=7d".to_owned()),
        "{described:?}"
    );
}

/// Flow records written before flows described themselves still load,
/// and a flow without description is written as before.
#[test]
fn old_flow_records_still_load() {
    let old = r#"{"name":"time.flows.unix.ar","namespace":"flows.unix.ar","owner":"test","visibility":"public","state":"active","binding":null,"copy_of":null,"granted_to":null,"created_unix":1}"#;
    let flow: Flow = serde_json::from_str(old).unwrap();
    assert_eq!(flow.description, FlowDescription::default());
    assert_eq!(serde_json::to_string(&flow).unwrap(), old);
}

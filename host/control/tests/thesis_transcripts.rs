//! The session transcripts of thesis sections 7.4.1 to 7.4.3, replayed over
//! raw TCP: the server must answer exactly as the proof of concept did.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Raw, TestHost, test_config};
use tokio::io::AsyncWriteExt;

/// 7.4.1: authenticating a user.
const AUTHENTICATE: &[(&str, &str)] = &[
    ("", "220 fnaa.unix.ar FNAA"),
    ("AUTHENTICATE PLAIN", "220 OK"),
    ("AHRlc3QAdGVzdA==", "220 Authenticated"),
];

async fn authenticate(raw: &mut Raw) {
    for (command, reply) in AUTHENTICATE {
        if !command.is_empty() {
            raw.send(command).await;
        }
        raw.expect(reply).await;
    }
}

#[tokio::test]
async fn use_case_1_authenticating_a_user() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.raw().await;
    authenticate(&mut raw).await;
    raw.exchange("QUIT", "221 fnaa.unix.ar closing connection")
        .await;
    assert!(raw.closed().await);
}

#[tokio::test]
async fn use_case_2_creating_a_flow() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.raw().await;
    authenticate(&mut raw).await;
    raw.exchange(
        "CREATE FLOW time.flows.unix.ar",
        "220 OK time.flows.unix.ar",
    )
    .await;
    // "The FNAA in background has created a Kafka Topic as well as the
    // necessary DNS entries for name resolution."
    let flow = common::name("time.flows.unix.ar");
    assert_eq!(host.fakes.provisioner.queues(), std::slice::from_ref(&flow));
    assert_eq!(host.fakes.directory.published(), [flow]);
}

#[tokio::test]
async fn use_case_3_describing_a_flow() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.raw().await;
    authenticate(&mut raw).await;
    raw.exchange(
        "CREATE FLOW time.flows.unix.ar",
        "220 OK time.flows.unix.ar",
    )
    .await;
    raw.send("DESCRIBE FLOW time.flows.unix.ar").await;
    for expected in [
        "220 DATA",
        "flow=time.flows.unix.ar",
        "type=kafka",
        "topic=time.flows.unix.ar",
        "server=kf1.unix.ar:9092",
    ] {
        raw.expect(expected).await;
    }
    // What a subscriber also needs follows the thesis lines, then 220 OK.
    let mut extra = Vec::new();
    loop {
        let line = raw.line().await.unwrap();
        if line == "220 OK" {
            break;
        }
        extra.push(line);
    }
    assert_eq!(
        extra,
        ["tls=no", "visibility=private", "namespace=flows.unix.ar"]
    );
}

#[tokio::test]
async fn use_case_4_subscribing() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.raw().await;
    authenticate(&mut raw).await;
    raw.exchange(
        "CREATE FLOW time.flows.unix.ar",
        "220 OK time.flows.unix.ar",
    )
    .await;
    raw.send("SUBSCRIBE time.flows.unix.ar LOCAL emiliano.ar-time.flows.unix.ar")
        .await;
    raw.expect("220 DATA").await;
    let copy = raw.line().await.unwrap();
    let (tag, rest) = copy.split_once('.').unwrap();
    assert_eq!(rest, "time.flows.unix.ar", "copy flow {copy}");
    assert!(
        tag.len() == 7
            && tag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "copy flow {copy}"
    );
    raw.expect("220 OK").await;

    // The copy flow and the local flow exist, each with queue and DNS
    // records, and the two bridges run.
    let queues = host.fakes.provisioner.queues();
    for flow in [
        copy.as_str(),
        "emiliano.ar-time.flows.unix.ar",
        "time.flows.unix.ar",
    ] {
        assert!(queues.contains(&common::name(flow)), "{flow} in {queues:?}");
    }
    let pipelines = host.fakes.pipelines.ids();
    assert_eq!(
        pipelines,
        [
            format!("subscription/{copy}/deliver"),
            format!("subscription/{copy}/publish")
        ]
    );
}

/// All four use cases in one session, fed to the server one byte at a
/// time: the replies are the same.
#[tokio::test]
async fn whole_session_byte_by_byte() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.raw().await;
    raw.expect("220 fnaa.unix.ar FNAA").await;
    let script: &[(&str, &[&str])] = &[
        ("AUTHENTICATE PLAIN", &["220 OK"]),
        ("AHRlc3QAdGVzdA==", &["220 Authenticated"]),
        (
            "CREATE FLOW time.flows.unix.ar",
            &["220 OK time.flows.unix.ar"],
        ),
        (
            "DESCRIBE FLOW time.flows.unix.ar",
            &[
                "220 DATA",
                "flow=time.flows.unix.ar",
                "type=kafka",
                "topic=time.flows.unix.ar",
                "server=kf1.unix.ar:9092",
                "tls=no",
                "visibility=private",
                "namespace=flows.unix.ar",
                "220 OK",
            ],
        ),
    ];
    for (command, replies) in script {
        for byte in format!("{command}\r\n").bytes() {
            raw.stream.write_all(&[byte]).await.unwrap();
            raw.stream.flush().await.unwrap();
        }
        for reply in *replies {
            raw.expect(reply).await;
        }
    }
    for byte in b"SUBSCRIBE time.flows.unix.ar LOCAL emiliano.ar-time.flows.unix.ar\r\n" {
        raw.stream.write_all(&[*byte]).await.unwrap();
    }
    raw.expect("220 DATA").await;
    assert!(raw.line().await.unwrap().ends_with(".time.flows.unix.ar"));
    raw.expect("220 OK").await;
}

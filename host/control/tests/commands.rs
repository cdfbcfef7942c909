//! Every FNAP command over raw TCP, with the authorization rules.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, name, test_config};
use fnaa_control::service::Principal;

#[tokio::test]
async fn flows_namespaces_and_visibility() {
    let mut config = test_config();
    config.fnap.namespace_domains = vec![name("unix.ar")];
    let host = TestHost::start(config).await;
    let mut raw = host.logged_in().await;

    raw.exchange("NOOP", "220 OK").await;
    assert!(
        raw.data("HELP")
            .await
            .iter()
            .any(|line| line.starts_with("SUBSCRIBE <flow>"))
    );
    assert_eq!(
        raw.data("help subscribe").await,
        ["SUBSCRIBE <flow> [LOCAL <flow>]"]
    );

    raw.exchange("CREATE NAMESPACE sensors.unix.ar", "220 OK sensors.unix.ar")
        .await;
    raw.code("CREATE NAMESPACE sensors.unix.ar", 554).await;
    raw.code("CREATE NAMESPACE a.flows.unix.ar", 552).await; // overlaps flows.unix.ar
    raw.code("CREATE NAMESPACE other.example.org", 551).await; // not under an open domain
    assert_eq!(
        raw.data("LIST NAMESPACES").await,
        ["flows.unix.ar", "sensors.unix.ar"]
    );

    raw.exchange(
        "CREATE FLOW b.sensors.unix.ar PUBLIC",
        "220 OK b.sensors.unix.ar",
    )
    .await;
    raw.exchange("create flow A.Sensors.Unix.AR", "220 OK a.sensors.unix.ar")
        .await;
    raw.code("CREATE FLOW a.sensors.unix.ar", 554).await;
    raw.code("CREATE FLOW sensors.unix.ar", 501).await;
    raw.code("CREATE FLOW x.nowhere.example", 550).await;
    raw.code("CREATE FLOW bad_name.sensors.unix.ar", 553).await;
    raw.code("CREATE FLOW", 501).await;
    raw.code("CREATE GADGET x.y", 501).await;
    assert_eq!(
        raw.data("LIST FLOWS sensors.unix.ar").await,
        ["a.sensors.unix.ar", "b.sensors.unix.ar"]
    );
    assert_eq!(
        raw.data("LIST FLOWS").await,
        ["a.sensors.unix.ar", "b.sensors.unix.ar"]
    );

    raw.code("DELETE NAMESPACE sensors.unix.ar", 552).await; // not empty
    raw.exchange(
        "SET FLOW a.sensors.unix.ar PUBLIC",
        "220 OK a.sensors.unix.ar public",
    )
    .await;
    assert!(
        raw.data("DESCRIBE FLOW a.sensors.unix.ar")
            .await
            .contains(&"visibility=public".to_owned())
    );
    raw.exchange("DELETE FLOW a.sensors.unix.ar", "220 OK a.sensors.unix.ar")
        .await;
    raw.exchange("DELETE FLOW b.sensors.unix.ar", "220 OK b.sensors.unix.ar")
        .await;
    raw.code("DELETE FLOW b.sensors.unix.ar", 550).await;
    raw.code("DESCRIBE FLOW b.sensors.unix.ar", 550).await;
    raw.exchange("DELETE NAMESPACE sensors.unix.ar", "220 OK sensors.unix.ar")
        .await;
    assert!(host.fakes.provisioner.queues().is_empty());
    assert!(host.fakes.directory.published().is_empty());
    raw.exchange("QUIT", "221 fnaa.unix.ar closing connection")
        .await;
}

#[tokio::test]
async fn another_users_namespace_is_off_limits() {
    let host = TestHost::start(test_config()).await;
    host.service
        .add_user(&Principal::Operator, "emiliano", "secret")
        .await
        .unwrap();
    host.service
        .create_namespace(
            &Principal::Operator,
            &name("flows.emiliano.ar"),
            Some("emiliano"),
        )
        .await
        .unwrap();
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW time.flows.unix.ar",
            "220 OK time.flows.unix.ar",
        )
        .await;
    owner
        .exchange(
            "CREATE FLOW open.flows.unix.ar PUBLIC",
            "220 OK open.flows.unix.ar",
        )
        .await;

    let mut other = host.raw().await;
    other.expect("220 fnaa.unix.ar FNAA").await;
    // \0emiliano\0secret
    other
        .exchange(
            "AUTHENTICATE PLAIN AGVtaWxpYW5vAHNlY3JldA==",
            "220 Authenticated",
        )
        .await;
    let denied = other.code("CREATE FLOW x.flows.unix.ar", 551).await;
    assert!(denied.contains("belongs to another user"), "{denied}");
    other.code("DELETE FLOW time.flows.unix.ar", 551).await;
    other.code("DESCRIBE FLOW time.flows.unix.ar", 551).await;
    other.code("SET FLOW time.flows.unix.ar PUBLIC", 551).await;
    other.code("DELETE NAMESPACE flows.unix.ar", 551).await;
    other
        .code(
            "SUBSCRIBE time.flows.unix.ar LOCAL copy.flows.emiliano.ar",
            551,
        )
        .await;
    // Public flows can be read and subscribed to, into one's own namespace.
    assert_eq!(
        other.data("LIST FLOWS flows.unix.ar").await,
        ["open.flows.unix.ar"]
    );
    assert!(
        other
            .data("DESCRIBE FLOW open.flows.unix.ar")
            .await
            .contains(&"type=kafka".to_owned())
    );
    other
        .code("SUBSCRIBE open.flows.unix.ar LOCAL mine.flows.unix.ar", 551)
        .await;
    let copy = other
        .data("SUBSCRIBE open.flows.unix.ar LOCAL copy.flows.emiliano.ar")
        .await;
    assert_eq!(copy.len(), 1);
    // The subscriber reads the copy flow; the publisher sees and can revoke.
    assert!(
        other
            .data(&format!("DESCRIBE FLOW {}", copy[0]))
            .await
            .contains(&"copy-of=open.flows.unix.ar".to_owned())
    );
    let listed = owner.data("LIST SUBSCRIPTIONS").await;
    assert_eq!(
        listed,
        [format!(
            "{} source=open.flows.unix.ar local=copy.flows.emiliano.ar subscriber=emiliano",
            copy[0]
        )]
    );
    owner.code("DELETE FLOW open.flows.unix.ar", 552).await; // in use
    owner.code(&format!("DELETE FLOW {}", copy[0]), 552).await; // use UNSUBSCRIBE
    owner
        .exchange(
            &format!("UNSUBSCRIBE {}", copy[0]),
            &format!("220 OK {}", copy[0]),
        )
        .await;
    assert!(other.data("LIST SUBSCRIPTIONS").await.is_empty());
    other.code(&format!("DESCRIBE FLOW {}", copy[0]), 550).await;
    // The local flow stays with its owner.
    assert_eq!(other.data("LIST FLOWS").await, ["copy.flows.emiliano.ar"]);
}

#[tokio::test]
async fn anonymous_reads_public_flows_only() {
    let mut config = test_config();
    config.fnap.allow_anonymous = true;
    let host = TestHost::start(config).await;
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW open.flows.unix.ar PUBLIC",
            "220 OK open.flows.unix.ar",
        )
        .await;
    owner
        .exchange(
            "CREATE FLOW closed.flows.unix.ar",
            "220 OK closed.flows.unix.ar",
        )
        .await;

    let mut guest = host.raw().await;
    guest.expect("220 fnaa.unix.ar FNAA").await;
    guest.exchange("AUTHENTICATE ANONYMOUS", "220 OK").await;
    guest
        .exchange("Z3Vlc3RAZXhhbXBsZS5vcmc=", "220 Authenticated")
        .await;
    assert_eq!(
        guest.data("LIST FLOWS flows.unix.ar").await,
        ["open.flows.unix.ar"]
    );
    assert!(
        guest
            .data("DESCRIBE FLOW open.flows.unix.ar")
            .await
            .contains(&"topic=open.flows.unix.ar".to_owned())
    );
    guest.code("DESCRIBE FLOW closed.flows.unix.ar", 551).await;
    guest.code("CREATE FLOW x.flows.unix.ar", 551).await;
    guest.code("SUBSCRIBE closed.flows.unix.ar", 551).await;
    guest
        .code("SUBSCRIBE open.flows.unix.ar LOCAL x.flows.unix.ar", 551)
        .await;
    // The publisher side of a cross-host subscription: a copy flow.
    let copy = guest.data("SUBSCRIBE open.flows.unix.ar").await;
    assert!(copy[0].ends_with(".open.flows.unix.ar"));
    assert!(
        guest
            .data(&format!("DESCRIBE FLOW {}", copy[0]))
            .await
            .contains(&format!("topic={}", copy[0]))
    );
    // Flows of other hosts: an anonymous session has nowhere to deliver.
    guest.code("SUBSCRIBE time.flows.example.org", 551).await;

    // Off unless the operator enables it.
    let closed = TestHost::start(test_config()).await;
    let mut guest = closed.raw().await;
    guest.expect("220 fnaa.unix.ar FNAA").await;
    guest.code("AUTHENTICATE ANONYMOUS", 504).await;
}

#[tokio::test]
async fn processor_lifecycle() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.logged_in().await;
    raw.exchange("CREATE FLOW in.flows.unix.ar", "220 OK in.flows.unix.ar")
        .await;
    raw.exchange("CREATE FLOW out.flows.unix.ar", "220 OK out.flows.unix.ar")
        .await;
    raw.code("CREATE PROCESSOR p.flows.unix.ar PLUGIN convert INPUT in.flows.unix.ar OUTPUT missing.flows.unix.ar", 550).await;
    raw.exchange(
        r#"CREATE PROCESSOR p.flows.unix.ar PLUGIN convert@1.0.0 INPUT in.flows.unix.ar OUTPUT out.flows.unix.ar CONFIG {"unit": "C"}"#,
        "220 OK p.flows.unix.ar",
    )
    .await;
    let (spec, _) = host
        .fakes
        .pipelines
        .get("processor/p.flows.unix.ar")
        .unwrap();
    assert_eq!(spec.inputs[0].binding.topic, "in.flows.unix.ar");
    raw.exchange(
        "PAUSE PROCESSOR p.flows.unix.ar",
        "220 OK p.flows.unix.ar paused",
    )
    .await;
    raw.exchange(
        "UPDATE PROCESSOR p.flows.unix.ar PLUGIN convert@1.1.0 CONFIG {\"unit\":\"F\"}",
        "220 OK p.flows.unix.ar",
    )
    .await;
    let described = raw.data("DESCRIBE PROCESSOR p.flows.unix.ar").await;
    for expected in [
        "version=1.1.0",
        "state=paused",
        "status=paused",
        r#"config={"unit":"F"}"#,
        "input=in.flows.unix.ar",
    ] {
        assert!(
            described.contains(&expected.to_owned()),
            "{expected} in {described:?}"
        );
    }
    raw.exchange(
        "RESUME PROCESSOR p.flows.unix.ar",
        "220 OK p.flows.unix.ar running",
    )
    .await;
    assert_eq!(
        raw.data("LIST PROCESSORS").await,
        ["p.flows.unix.ar plugin=convert@1.1.0 state=running"]
    );
    raw.code("DELETE FLOW in.flows.unix.ar", 552).await;
    raw.code("UPDATE PROCESSOR p.flows.unix.ar", 501).await;
    raw.exchange("DELETE PROCESSOR p.flows.unix.ar", "220 OK p.flows.unix.ar")
        .await;
    raw.code("DESCRIBE PROCESSOR p.flows.unix.ar", 550).await;
    assert!(host.fakes.pipelines.pipelines().is_empty());
    raw.exchange("DELETE FLOW in.flows.unix.ar", "220 OK in.flows.unix.ar")
        .await;
}

#[tokio::test]
async fn failed_provisioning_leaves_nothing_behind() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.logged_in().await;

    host.fakes
        .provisioner
        .fail_create(Some("broker unreachable"));
    let reply = raw.code("CREATE FLOW a.flows.unix.ar", 452).await;
    assert!(reply.contains("broker unreachable"), "{reply}");
    host.fakes.provisioner.fail_create(None);

    host.fakes
        .directory
        .fail_publish(Some("DNS update refused"));
    let reply = raw.code("CREATE FLOW a.flows.unix.ar", 452).await;
    assert!(reply.contains("DNS update refused"), "{reply}");
    assert!(
        host.fakes.provisioner.queues().is_empty(),
        "the queue was deleted again"
    );
    host.fakes.directory.fail_publish(None);
    raw.code("DESCRIBE FLOW a.flows.unix.ar", 550).await;

    raw.exchange("CREATE FLOW a.flows.unix.ar", "220 OK a.flows.unix.ar")
        .await;
    host.fakes.pipelines.fail_start(Some("no capacity"));
    raw.code("SUBSCRIBE a.flows.unix.ar LOCAL b.flows.unix.ar", 452)
        .await;
    assert_eq!(
        host.fakes.provisioner.queues(),
        [name("a.flows.unix.ar")],
        "copy and local flows were removed"
    );
    assert_eq!(raw.data("LIST FLOWS").await, ["a.flows.unix.ar"]);
    host.fakes.pipelines.fail_start(None);

    host.fakes.provisioner.fail_delete(Some("topic locked"));
    raw.code("DELETE FLOW a.flows.unix.ar", 452).await;
    assert_eq!(
        host.fakes.directory.published(),
        [name("a.flows.unix.ar")],
        "DNS records published again"
    );
    assert!(
        raw.data("DESCRIBE FLOW a.flows.unix.ar")
            .await
            .contains(&"flow=a.flows.unix.ar".to_owned())
    );
}

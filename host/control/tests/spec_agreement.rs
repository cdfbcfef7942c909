//! What docs/fnap.md settles and the server must do exactly: name lengths
//! (1.1), anonymous listings (5.2, 5.6), the error codes of SET FLOW (5.8),
//! UNSUBSCRIBE (5.10) and CREATE PROCESSOR (5.11), copy flows and the
//! subscriptions the spec refuses (5.9).
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, name, test_config};

/// A name of exactly `len` octets ending in `.suffix`, in labels of at most
/// 63 octets.
fn name_of_length(len: usize, suffix: &str) -> String {
    let mut room = len - suffix.len() - 1;
    let mut labels = Vec::new();
    while room > 63 {
        let label = 63.min(room - 2);
        labels.push("a".repeat(label));
        room -= label + 1;
    }
    labels.push("b".repeat(room));
    let name = format!("{}.{suffix}", labels.join("."));
    assert_eq!(name.len(), len);
    name
}

async fn host_with_anonymous() -> TestHost {
    let mut config = test_config();
    config.fnap.allow_anonymous = true;
    config.fnap.namespace_domains = vec![name("unix.ar")];
    TestHost::start(config).await
}

#[tokio::test]
async fn names_are_at_most_235_octets_and_namespaces_230() {
    let host = host_with_anonymous().await;
    let mut raw = host.logged_in().await;

    let longest = name_of_length(235, "flows.unix.ar");
    raw.exchange(
        &format!("CREATE FLOW {longest}"),
        &format!("220 OK {longest}"),
    )
    .await;
    let reply = raw
        .code(
            &format!("CREATE FLOW {}", name_of_length(236, "flows.unix.ar")),
            553,
        )
        .await;
    assert!(reply.contains("235 octets"), "{reply}");
    // Everywhere a name appears.
    raw.code(
        &format!("DESCRIBE FLOW {}", name_of_length(236, "flows.unix.ar")),
        553,
    )
    .await;

    // A copy flow adds 8 octets: sources of up to 227 can be subscribed to.
    let subscribable = name_of_length(227, "flows.unix.ar");
    raw.exchange(
        &format!("CREATE FLOW {subscribable}"),
        &format!("220 OK {subscribable}"),
    )
    .await;
    let copy = raw.data(&format!("SUBSCRIBE {subscribable}")).await;
    assert_eq!(copy[0].len(), 235);
    let reply = raw.code(&format!("SUBSCRIBE {longest}"), 553).await;
    assert!(reply.contains("227 octets"), "{reply}");
    let too_long_for_copy = name_of_length(228, "flows.unix.ar");
    raw.exchange(
        &format!("CREATE FLOW {too_long_for_copy}"),
        &format!("220 OK {too_long_for_copy}"),
    )
    .await;
    raw.code(&format!("SUBSCRIBE {too_long_for_copy}"), 553)
        .await;

    let namespace = name_of_length(230, "unix.ar");
    raw.exchange(
        &format!("CREATE NAMESPACE {namespace}"),
        &format!("220 OK {namespace}"),
    )
    .await;
    let reply = raw
        .code(
            &format!("CREATE NAMESPACE {}", name_of_length(231, "unix.ar")),
            553,
        )
        .await;
    assert!(reply.contains("230 octets"), "{reply}");
}

#[tokio::test]
async fn anonymous_sessions_list_public_flows_by_namespace_only() {
    let host = host_with_anonymous().await;
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW open.flows.unix.ar PUBLIC",
            "220 OK open.flows.unix.ar",
        )
        .await;
    owner
        .exchange(
            "CREATE FLOW shut.flows.unix.ar",
            "220 OK shut.flows.unix.ar",
        )
        .await;

    let mut guest = host.anonymous().await;
    assert_eq!(
        guest.data("LIST FLOWS flows.unix.ar").await,
        ["open.flows.unix.ar"]
    );
    // Its own subscriptions only (tests/anonymous.rs).
    assert!(guest.data("LIST SUBSCRIPTIONS").await.is_empty());
    for command in ["LIST FLOWS", "LIST NAMESPACES", "LIST PROCESSORS"] {
        let reply = guest.code(command, 551).await;
        assert!(reply.contains("anonymous"), "{command}: {reply}");
    }
    guest.code("LIST FLOWS nowhere.example.org", 550).await;
    guest.code("LIST FLOWS bad_name.unix.ar", 553).await;
}

#[tokio::test]
async fn set_flow_errors() {
    let host = host_with_anonymous().await;
    host.add_user("emiliano", "secret", "flows.emiliano.ar")
        .await;
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW time.flows.unix.ar PUBLIC",
            "220 OK time.flows.unix.ar",
        )
        .await;
    owner
        .exchange(
            "SET FLOW time.flows.unix.ar PRIVATE",
            "220 OK time.flows.unix.ar private",
        )
        .await;
    owner.code("SET FLOW time.flows.unix.ar", 501).await;
    owner.code("SET FLOW time.flows.unix.ar OPEN", 501).await;
    owner
        .code("SET PROCESSOR time.flows.unix.ar PUBLIC", 501)
        .await;
    owner
        .code("SET FLOW bad_name.flows.unix.ar PUBLIC", 553)
        .await;
    owner.code("SET FLOW nope.flows.unix.ar PUBLIC", 550).await;
    let copy = owner.data("SUBSCRIBE time.flows.unix.ar").await;
    let reply = owner
        .code(&format!("SET FLOW {} PUBLIC", copy[0]), 552)
        .await;
    assert!(reply.contains("copy flow"), "{reply}");

    let mut other = host.logged_in_as("emiliano", "secret").await;
    other.code("SET FLOW time.flows.unix.ar PUBLIC", 551).await;
    let mut guest = host.anonymous().await;
    guest.code("SET FLOW time.flows.unix.ar PUBLIC", 551).await;
}

#[tokio::test]
async fn unsubscribe_errors_change_nothing() {
    let host = host_with_anonymous().await;
    host.add_user("emiliano", "secret", "flows.emiliano.ar")
        .await;
    host.add_user("third", "party", "flows.third.ar").await;
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW time.flows.unix.ar PUBLIC",
            "220 OK time.flows.unix.ar",
        )
        .await;
    let mut subscriber = host.logged_in_as("emiliano", "secret").await;
    let copy = subscriber
        .data("SUBSCRIBE time.flows.unix.ar LOCAL time.flows.emiliano.ar")
        .await
        .remove(0);

    subscriber
        .code("UNSUBSCRIBE bad_name.flows.unix.ar", 553)
        .await;
    subscriber.code("UNSUBSCRIBE time.flows.unix.ar", 550).await;
    subscriber.code("UNSUBSCRIBE", 501).await;
    let mut third = host.logged_in_as("third", "party").await;
    third.code(&format!("UNSUBSCRIBE {copy}"), 551).await;

    // The copy's queue cannot be deleted: 452, and the subscription runs on.
    host.fakes.provisioner.fail_delete(Some("topic locked"));
    let reply = subscriber.code(&format!("UNSUBSCRIBE {copy}"), 452).await;
    assert!(reply.contains("topic locked"), "{reply}");
    assert_eq!(subscriber.data("LIST SUBSCRIPTIONS").await.len(), 1);
    assert!(
        host.fakes
            .pipelines
            .get(&format!("subscription/{copy}/publish"))
            .is_some()
    );
    assert!(
        host.fakes
            .pipelines
            .get(&format!("subscription/{copy}/deliver"))
            .is_some()
    );
    assert!(
        subscriber
            .data(&format!("DESCRIBE FLOW {copy}"))
            .await
            .contains(&"copy-of=time.flows.unix.ar".to_owned())
    );
    host.fakes.provisioner.fail_delete(None);
    // The publisher revokes it.
    owner
        .exchange(&format!("UNSUBSCRIBE {copy}"), &format!("220 OK {copy}"))
        .await;
    subscriber.code(&format!("UNSUBSCRIBE {copy}"), 550).await;
}

#[tokio::test]
async fn create_processor_errors() {
    let host = host_with_anonymous().await;
    host.add_user("emiliano", "secret", "flows.emiliano.ar")
        .await;
    let mut other = host.logged_in_as("emiliano", "secret").await;
    other
        .exchange(
            "CREATE FLOW theirs.flows.emiliano.ar",
            "220 OK theirs.flows.emiliano.ar",
        )
        .await;
    let mut raw = host.logged_in().await;
    for flow in ["a", "b", "c"] {
        raw.exchange(
            &format!("CREATE FLOW {flow}.flows.unix.ar"),
            &format!("220 OK {flow}.flows.unix.ar"),
        )
        .await;
    }
    let create = |name: &str, input: &str, output: &str| {
        format!("CREATE PROCESSOR {name} PLUGIN bridge INPUT {input} OUTPUT {output}")
    };
    raw.exchange(
        &create("p.flows.unix.ar", "a.flows.unix.ar", "b.flows.unix.ar"),
        "220 OK p.flows.unix.ar",
    )
    .await;
    raw.code(
        &create("p.flows.unix.ar", "a.flows.unix.ar", "c.flows.unix.ar"),
        554,
    )
    .await;
    // b feeds back into a through p: a loop.
    let reply = raw
        .code(
            &create("q.flows.unix.ar", "b.flows.unix.ar", "a.flows.unix.ar"),
            552,
        )
        .await;
    assert!(reply.contains("loop"), "{reply}");
    raw.code(
        &create("r.flows.unix.ar", "c.flows.unix.ar", "c.flows.unix.ar"),
        552,
    )
    .await;
    raw.code(
        &create("q.flows.unix.ar", "a.flows.unix.ar", "nope.flows.unix.ar"),
        550,
    )
    .await;
    raw.code(
        &create("q.nowhere.example", "a.flows.unix.ar", "c.flows.unix.ar"),
        550,
    )
    .await;
    raw.code(
        &create(
            "q.flows.unix.ar",
            "a.flows.unix.ar",
            "theirs.flows.emiliano.ar",
        ),
        551,
    )
    .await;
    raw.code(
        &create(
            "q.flows.unix.ar",
            "theirs.flows.emiliano.ar",
            "c.flows.unix.ar",
        ),
        551,
    )
    .await;
    raw.code(
        &create("q.flows.emiliano.ar", "a.flows.unix.ar", "c.flows.unix.ar"),
        551,
    )
    .await;
    raw.code(
        &create("flows.unix.ar", "a.flows.unix.ar", "c.flows.unix.ar"),
        501,
    )
    .await;
    raw.code(
        "CREATE PROCESSOR q.flows.unix.ar PLUGIN bridge INPUT a.flows.unix.ar",
        501,
    )
    .await;
    raw.code(
        "CREATE PROCESSOR q.flows.unix.ar PLUGIN bridge INPUT a.flows.unix.ar OUTPUT c.flows.unix.ar CONFIG [1]",
        501,
    )
    .await;
    raw.code(
        &create("q_x.flows.unix.ar", "a.flows.unix.ar", "c.flows.unix.ar"),
        553,
    )
    .await;
    host.fakes.pipelines.fail_start(Some("no capacity"));
    raw.code(
        &create("q.flows.unix.ar", "a.flows.unix.ar", "c.flows.unix.ar"),
        452,
    )
    .await;
    host.fakes.pipelines.fail_start(None);
    assert_eq!(
        raw.data("LIST PROCESSORS").await,
        ["p.flows.unix.ar plugin=bridge state=running"]
    );
    let mut guest = host.anonymous().await;
    guest
        .code(
            &create("q.flows.unix.ar", "a.flows.unix.ar", "c.flows.unix.ar"),
            551,
        )
        .await;
}

#[tokio::test]
async fn copies_of_public_flows_stay_private_to_their_subscriber() {
    let host = host_with_anonymous().await;
    host.add_user("emiliano", "secret", "flows.emiliano.ar")
        .await;
    host.add_user("third", "party", "flows.third.ar").await;
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "CREATE FLOW time.flows.unix.ar PUBLIC",
            "220 OK time.flows.unix.ar",
        )
        .await;
    let mut subscriber = host.logged_in_as("emiliano", "secret").await;
    let copy = subscriber
        .data("SUBSCRIBE time.flows.unix.ar")
        .await
        .remove(0);
    let described = subscriber.data(&format!("DESCRIBE FLOW {copy}")).await;
    for line in [
        "visibility=private".to_owned(),
        "namespace=flows.unix.ar".to_owned(),
        "copy-of=time.flows.unix.ar".to_owned(),
        format!("topic={copy}"),
    ] {
        assert!(described.contains(&line), "{line} in {described:?}");
    }
    // The owner sees and describes it; nobody else does.
    assert!(owner.data(&format!("DESCRIBE FLOW {copy}")).await.len() > 4);
    let mut expected = vec![copy.clone(), "time.flows.unix.ar".to_owned()];
    expected.sort();
    assert_eq!(owner.data("LIST FLOWS flows.unix.ar").await, expected);
    let mut third = host.logged_in_as("third", "party").await;
    third.code(&format!("DESCRIBE FLOW {copy}"), 551).await;
    assert_eq!(
        third.data("LIST FLOWS flows.unix.ar").await,
        ["time.flows.unix.ar"]
    );
    let mut guest = host.anonymous().await;
    guest.code(&format!("DESCRIBE FLOW {copy}"), 551).await;

    // A copy is not a source, nor a local flow.
    let reply = subscriber.code(&format!("SUBSCRIBE {copy}"), 552).await;
    assert!(reply.contains("subscribe to time.flows.unix.ar"), "{reply}");
    owner.code(&format!("SUBSCRIBE {copy}"), 552).await;
    owner
        .code(&format!("SUBSCRIBE time.flows.unix.ar LOCAL {copy}"), 501)
        .await;
    owner
        .exchange(
            "CREATE FLOW date.flows.unix.ar",
            "220 OK date.flows.unix.ar",
        )
        .await;
    owner
        .code(&format!("SUBSCRIBE date.flows.unix.ar LOCAL {copy}"), 552)
        .await;
    // Making the source private later does not end the subscription.
    owner
        .exchange(
            "SET FLOW time.flows.unix.ar PRIVATE",
            "220 OK time.flows.unix.ar private",
        )
        .await;
    assert!(
        subscriber
            .data(&format!("DESCRIBE FLOW {copy}"))
            .await
            .contains(&"copy-of=time.flows.unix.ar".to_owned())
    );
    subscriber.code("SUBSCRIBE time.flows.unix.ar", 551).await;
}

#[tokio::test]
async fn subscriptions_that_would_loop_are_refused() {
    let host = host_with_anonymous().await;
    let mut raw = host.logged_in().await;
    for flow in ["a", "b", "c"] {
        raw.exchange(
            &format!("CREATE FLOW {flow}.flows.unix.ar"),
            &format!("220 OK {flow}.flows.unix.ar"),
        )
        .await;
    }
    let reply = raw
        .code("SUBSCRIBE a.flows.unix.ar LOCAL a.flows.unix.ar", 501)
        .await;
    assert!(reply.contains("into itself"), "{reply}");
    raw.code("SUBSCRIBE a.flows.unix.ar LOCAL x.a.flows.unix.ar", 501)
        .await;
    raw.data("SUBSCRIBE a.flows.unix.ar LOCAL b.flows.unix.ar")
        .await;
    raw.data("SUBSCRIBE b.flows.unix.ar LOCAL c.flows.unix.ar")
        .await;
    let reply = raw
        .code("SUBSCRIBE c.flows.unix.ar LOCAL a.flows.unix.ar", 552)
        .await;
    assert!(reply.contains("loop"), "{reply}");
    // Nothing was left of the refused ones.
    assert_eq!(raw.data("LIST SUBSCRIPTIONS").await.len(), 2);
    assert_eq!(
        raw.data("LIST FLOWS").await.len(),
        5,
        "a, b, c and two copies"
    );
}

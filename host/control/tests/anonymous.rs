//! Anonymous access (docs/fnap.md 5.2): off unless enabled, public flows
//! only, one identity per session, quotas per client address and per flow.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHost, test_config};
use fnaa_control::store::Subscription;

async fn host(per_address: usize, per_flow: usize) -> TestHost {
    let mut config = test_config();
    config.fnap.allow_anonymous = true;
    config.fnap.anonymous_subscriptions_per_address = per_address;
    config.fnap.anonymous_subscriptions_per_flow = per_flow;
    let host = TestHost::start(config).await;
    let mut owner = host.logged_in().await;
    for flow in ["time", "date"] {
        owner
            .exchange(
                &format!("CREATE FLOW {flow}.flows.unix.ar PUBLIC"),
                &format!("220 OK {flow}.flows.unix.ar"),
            )
            .await;
    }
    owner
        .exchange(
            "CREATE FLOW secret.flows.unix.ar",
            "220 OK secret.flows.unix.ar",
        )
        .await;
    host
}

#[tokio::test]
async fn anonymous_access_is_off_by_default() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.raw().await;
    raw.expect("220 fnaa.unix.ar FNAA").await;
    let reply = raw.code("AUTHENTICATE ANONYMOUS =", 504).await;
    assert!(reply.contains("not enabled"), "{reply}");
    let reply = raw.code("AUTHENTICATE FOO", 504).await;
    assert!(!reply.contains("ANONYMOUS"), "not offered: {reply}");
}

#[tokio::test]
async fn one_anonymous_client_cannot_touch_anothers_subscription() {
    let host = host(10, 10).await;
    let mut alice = host.anonymous().await;
    let mut bob = host.anonymous().await;
    let copy = alice.data("SUBSCRIBE time.flows.unix.ar").await.remove(0);
    assert!(copy.ends_with(".time.flows.unix.ar"), "{copy}");

    // Bob, anonymous too, from the same address: nothing of Alice's.
    assert!(bob.data("LIST SUBSCRIPTIONS").await.is_empty());
    bob.code(&format!("DESCRIBE FLOW {copy}"), 551).await;
    let reply = bob.code(&format!("UNSUBSCRIBE {copy}"), 551).await;
    assert!(reply.contains("belongs to another"), "{reply}");
    let bobs = bob.data("SUBSCRIBE time.flows.unix.ar").await.remove(0);
    alice.code(&format!("UNSUBSCRIBE {bobs}"), 551).await;

    // Alice controls hers; her identity is not a name others can use.
    let listed = alice.data("LIST SUBSCRIPTIONS").await;
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].starts_with(&format!(
            "{copy} source=time.flows.unix.ar local=- subscriber=anonymous-"
        )),
        "{listed:?}"
    );
    assert!(
        alice
            .data(&format!("DESCRIBE FLOW {copy}"))
            .await
            .contains(&"copy-of=time.flows.unix.ar".to_owned())
    );
    alice
        .exchange(&format!("UNSUBSCRIBE {copy}"), &format!("220 OK {copy}"))
        .await;

    // A later anonymous session is somebody else: only the publisher can
    // end Bob's subscription once Bob has gone.
    bob.exchange("QUIT", "221 fnaa.unix.ar closing connection")
        .await;
    let mut later = host.anonymous().await;
    later.code(&format!("UNSUBSCRIBE {bobs}"), 551).await;
    let mut owner = host.logged_in().await;
    let seen = owner.data("LIST SUBSCRIPTIONS").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    owner
        .exchange(&format!("UNSUBSCRIBE {bobs}"), &format!("220 OK {bobs}"))
        .await;
}

#[tokio::test]
async fn quota_per_client_address_gets_453() {
    let host = host(2, 100).await;
    let mut first = host.anonymous_from("127.0.0.1").await;
    let mut second = host.anonymous_from("127.0.0.1").await;
    let copy = first.data("SUBSCRIBE time.flows.unix.ar").await.remove(0);
    second.data("SUBSCRIBE date.flows.unix.ar").await;
    // The address holds 2, across sessions and flows.
    let reply = second.code("SUBSCRIBE time.flows.unix.ar", 453).await;
    assert!(reply.contains("127.0.0.1"), "{reply}");
    assert_eq!(
        host.fakes.provisioner.queues().len(),
        5,
        "3 flows and 2 copies: nothing provisioned for the refused one"
    );
    // Another address has room of its own.
    let mut elsewhere = host.anonymous_from("127.0.0.2").await;
    elsewhere.data("SUBSCRIBE time.flows.unix.ar").await;
    // Ending one frees room.
    first
        .exchange(&format!("UNSUBSCRIBE {copy}"), &format!("220 OK {copy}"))
        .await;
    second.data("SUBSCRIBE time.flows.unix.ar").await;
    // Authenticated users are not counted.
    let mut user = host.logged_in().await;
    user.data("SUBSCRIBE time.flows.unix.ar").await;
}

#[tokio::test]
async fn quota_per_flow_gets_453() {
    let host = host(100, 2).await;
    let mut a = host.anonymous_from("127.0.0.3").await;
    let mut b = host.anonymous_from("127.0.0.4").await;
    a.data("SUBSCRIBE time.flows.unix.ar").await;
    b.data("SUBSCRIBE time.flows.unix.ar").await;
    let mut c = host.anonymous_from("127.0.0.5").await;
    let reply = c.code("SUBSCRIBE time.flows.unix.ar", 453).await;
    assert!(reply.contains("time.flows.unix.ar"), "{reply}");
    // Other flows have their own count; the session goes on.
    c.data("SUBSCRIBE date.flows.unix.ar").await;
}

#[tokio::test]
async fn private_flows_are_refused_to_anonymous_sessions() {
    let host = host(10, 10).await;
    let mut guest = host.anonymous().await;
    guest.code("SUBSCRIBE secret.flows.unix.ar", 551).await;
    guest.code("DESCRIBE FLOW secret.flows.unix.ar", 551).await;
    guest
        .code("SUBSCRIBE time.flows.unix.ar LOCAL x.flows.unix.ar", 551)
        .await;
    assert_eq!(
        guest.data("LIST FLOWS flows.unix.ar").await,
        ["date.flows.unix.ar", "time.flows.unix.ar"]
    );
    // A flow made private later is refused from then on.
    let mut owner = host.logged_in().await;
    owner
        .exchange(
            "SET FLOW date.flows.unix.ar PRIVATE",
            "220 OK date.flows.unix.ar private",
        )
        .await;
    guest.code("SUBSCRIBE date.flows.unix.ar", 551).await;
}

/// Subscriptions recorded before anonymous sessions had identities (no
/// `client_address`, subscriber `anonymous`) still load, and count as
/// anonymous but belong to no session.
#[test]
fn old_subscription_records_still_load() {
    let old = r#"{"id":"ksdj898.time.flows.unix.ar","source":"time.flows.unix.ar","local":null,"subscriber":"anonymous","created_unix":1}"#;
    let subscription: Subscription = serde_json::from_str(old).unwrap();
    assert_eq!(subscription.client_address, None);
    assert_eq!(subscription.subscriber, "anonymous");
    let written = serde_json::to_string(&subscription).unwrap();
    assert!(!written.contains("client_address"), "{written}");
}

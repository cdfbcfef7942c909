//! State survives a restart, and the pipelines start again.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fakes, TestHost, name, test_config};
use fnaa_control::store::{Change, Flow, FlowState, RedbStore, RunState, Store, Visibility};

#[tokio::test]
async fn restart_restores_everything() {
    let host = TestHost::start(test_config()).await;
    let mut raw = host.logged_in().await;
    raw.exchange(
        "CREATE FLOW time.flows.unix.ar PUBLIC",
        "220 OK time.flows.unix.ar",
    )
    .await;
    raw.exchange("CREATE FLOW out.flows.unix.ar", "220 OK out.flows.unix.ar")
        .await;
    let copy = raw
        .data("SUBSCRIBE time.flows.unix.ar LOCAL emiliano.ar-time.flows.unix.ar")
        .await
        .remove(0);
    raw.exchange(
        "CREATE PROCESSOR p.flows.unix.ar PLUGIN convert@1.0.0 INPUT time.flows.unix.ar OUTPUT out.flows.unix.ar",
        "220 OK p.flows.unix.ar",
    )
    .await;
    raw.exchange(
        "PAUSE PROCESSOR p.flows.unix.ar",
        "220 OK p.flows.unix.ar paused",
    )
    .await;
    drop(raw);
    let (dir, _old_fakes) = host.stop().await;

    // A flow whose creation was cut short by a crash.
    {
        let store = RedbStore::open(&dir.path().join("state.redb")).unwrap();
        let interrupted = Flow {
            name: name("half.flows.unix.ar"),
            namespace: name("flows.unix.ar"),
            owner: "test".into(),
            visibility: Visibility::Private,
            state: FlowState::Provisioning,
            binding: None,
            copy_of: None,
            granted_to: None,
            created_unix: 0,
            description: Default::default(),
        };
        store.apply(Change::CreateFlow(interrupted)).await.unwrap();
    }

    let fakes = Fakes::new();
    let host = TestHost::start_in(dir, test_config(), fakes, None, false).await;
    let mut raw = host.logged_in().await;
    let flows = raw.data("LIST FLOWS").await;
    let mut expected = vec![
        copy.clone(),
        "emiliano.ar-time.flows.unix.ar".to_owned(),
        "out.flows.unix.ar".to_owned(),
        "time.flows.unix.ar".to_owned(),
    ];
    expected.sort();
    assert_eq!(flows, expected);
    assert!(
        raw.data("DESCRIBE FLOW time.flows.unix.ar")
            .await
            .contains(&"visibility=public".to_owned())
    );
    raw.code("DESCRIBE FLOW half.flows.unix.ar", 550).await;
    assert_eq!(raw.data("LIST SUBSCRIPTIONS").await.len(), 1);
    assert!(
        raw.data("DESCRIBE PROCESSOR p.flows.unix.ar")
            .await
            .contains(&"state=paused".to_owned())
    );

    let mut pipelines: Vec<(String, RunState)> = host
        .fakes
        .pipelines
        .pipelines()
        .into_iter()
        .map(|(spec, state)| (spec.id, state))
        .collect();
    pipelines.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        pipelines,
        [
            ("processor/p.flows.unix.ar".to_owned(), RunState::Paused),
            (format!("subscription/{copy}/deliver"), RunState::Running),
            (format!("subscription/{copy}/publish"), RunState::Running),
        ]
    );
}

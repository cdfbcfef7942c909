//! The gRPC admin API: same operations, same authorization.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Fakes, TestHost, test_config};
use fnaa_control::grpc::pb;
use fnaa_control::grpc::pb::control_client::ControlClient;
use tonic::Code;

const TOKEN: &str = "operator-token-0123456789";

fn with_auth<T>(message: T, authorization: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn operator_and_users() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut config = test_config();
    config.grpc.listen = Some("127.0.0.1:0".parse().unwrap());
    config.grpc.admin_token_file = Some(token_file);
    let host = TestHost::start_in(dir, config, Fakes::new(), None, true).await;
    let mut api = ControlClient::connect(format!("http://{}", host.grpc.unwrap()))
        .await
        .unwrap();
    let operator = format!("Bearer {TOKEN}");

    let error = api
        .list_users(tonic::Request::new(pb::Empty {}))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = api
        .list_users(with_auth(pb::Empty {}, "Bearer wrong-token-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    api.add_user(with_auth(
        pb::AddUserRequest {
            name: "alice".into(),
            password: "wonder".into(),
        },
        &operator,
    ))
    .await
    .unwrap();
    let namespace = pb::CreateNamespaceRequest {
        name: "flows.alice.ar".into(),
        owner: "alice".into(),
    };
    api.create_namespace(with_auth(namespace, &operator))
        .await
        .unwrap();
    let users = api
        .list_users(with_auth(pb::Empty {}, &operator))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(
        users
            .iter()
            .any(|u| u.name == "alice" && u.namespaces == ["flows.alice.ar"])
    );

    let alice = basic("alice", "wonder");
    let error = api
        .list_users(with_auth(pb::Empty {}, &alice))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = api
        .list_users(with_auth(pb::Empty {}, &basic("alice", "nope")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    let flow = api
        .create_flow(with_auth(
            pb::CreateFlowRequest {
                name: "time.flows.alice.ar".into(),
                visibility: 0,
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (flow.broker_type.as_str(), flow.topic.as_str()),
        ("kafka", "time.flows.alice.ar")
    );
    let error = api
        .create_flow(with_auth(
            pb::CreateFlowRequest {
                name: "x.flows.unix.ar".into(),
                visibility: 0,
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = api
        .create_flow(with_auth(
            pb::CreateFlowRequest {
                name: "bad_name.flows.alice.ar".into(),
                visibility: 0,
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    let error = api
        .create_flow(with_auth(
            pb::CreateFlowRequest {
                name: "time.flows.alice.ar".into(),
                visibility: 0,
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists);

    // test's private flow is not alice's to read.
    let mut raw = host.logged_in().await;
    raw.exchange(
        "CREATE FLOW secret.flows.unix.ar",
        "220 OK secret.flows.unix.ar",
    )
    .await;
    let error = api
        .describe_flow(with_auth(
            pb::NameRequest {
                name: "secret.flows.unix.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let described = api
        .describe_flow(with_auth(
            pb::NameRequest {
                name: "secret.flows.unix.ar".into(),
            },
            &operator,
        ))
        .await
        .unwrap();
    assert_eq!(described.into_inner().owner, "test");

    let subscription = api
        .subscribe(with_auth(
            pb::SubscribeRequest {
                source: "time.flows.alice.ar".into(),
                local: "copy.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(subscription.id.ends_with(".time.flows.alice.ar"));
    let listed = api
        .list_subscriptions(with_auth(pb::Empty {}, &alice))
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(listed.len(), 1);

    let processor = pb::CreateProcessorRequest {
        name: "p.flows.alice.ar".into(),
        plugin: "convert".into(),
        plugin_version: "1.0.0".into(),
        inputs: vec!["time.flows.alice.ar".into()],
        outputs: vec!["copy.flows.alice.ar".into()],
        config_json: r#"{"unit":"C"}"#.into(),
    };
    api.create_processor(with_auth(processor, &alice))
        .await
        .unwrap();
    let paused = api
        .pause_processor(with_auth(
            pb::NameRequest {
                name: "p.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap();
    assert_eq!(paused.into_inner().state, "paused");
    let error = api
        .pause_processor(with_auth(
            pb::NameRequest {
                name: "p.flows.alice.ar".into(),
            },
            &basic("test", "test"),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let update = pb::UpdateProcessorRequest {
        name: "p.flows.alice.ar".into(),
        plugin: String::new(),
        plugin_version: String::new(),
        config_json: r#"{"unit":"K"}"#.into(),
    };
    api.update_processor(with_auth(update, &alice))
        .await
        .unwrap();
    let described = api
        .describe_processor(with_auth(
            pb::NameRequest {
                name: "p.flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (described.config_json.as_str(), described.status.as_str()),
        (r#"{"unit":"K"}"#, "paused")
    );
    api.resume_processor(with_auth(
        pb::NameRequest {
            name: "p.flows.alice.ar".into(),
        },
        &alice,
    ))
    .await
    .unwrap();
    api.delete_processor(with_auth(
        pb::NameRequest {
            name: "p.flows.alice.ar".into(),
        },
        &alice,
    ))
    .await
    .unwrap();
    api.unsubscribe(with_auth(
        pb::NameRequest {
            name: subscription.id,
        },
        &alice,
    ))
    .await
    .unwrap();
    let error = api
        .delete_namespace(with_auth(
            pb::NameRequest {
                name: "flows.alice.ar".into(),
            },
            &alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    let flows = api
        .list_flows(with_auth(
            pb::ListFlowsRequest {
                namespace: String::new(),
            },
            &alice,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(flows.flows.len(), 2);
}

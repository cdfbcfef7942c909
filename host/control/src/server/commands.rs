//! Carries out an authenticated command through the service and turns
//! the outcome into a reply.

use crate::fnap::Command;
use crate::fnap::Reply;
use crate::fnap::cmd::create::Create;
use crate::fnap::cmd::delete::Delete;
use crate::fnap::cmd::describe::{self, Describe};
use crate::fnap::cmd::list::{self, List};
use crate::fnap::cmd::set::{Set, Setting};
use crate::service::{Principal, Service, ServiceError};
use crate::store::{RunState, Visibility};

pub(super) async fn execute(service: &Service, principal: &Principal, command: Command) -> Reply {
    match run(service, principal, command).await {
        Ok(reply) => reply,
        Err(error) => {
            if let ServiceError::Store(detail) = &error {
                tracing::error!(%detail, "state store failure");
            }
            Reply::from(&error)
        }
    }
}

async fn run(
    service: &Service,
    principal: &Principal,
    command: Command,
) -> Result<Reply, ServiceError> {
    Ok(match command {
        Command::Create(Create::Flow { name, public }) => {
            let visibility = if public {
                Visibility::Public
            } else {
                Visibility::Private
            };
            let flow = service.create_flow(principal, &name, visibility).await?;
            Reply::ok(format!("OK {}", flow.name))
        }
        Command::Create(Create::Namespace { name }) => {
            let namespace = service.create_namespace(principal, &name, None).await?;
            Reply::ok(format!("OK {}", namespace.name))
        }
        Command::Create(Create::Processor(spec)) => {
            let processor = service.create_processor(principal, spec).await?;
            Reply::ok(format!("OK {}", processor.name))
        }
        Command::Delete(Delete::Flow(name)) => {
            service.delete_flow(principal, &name).await?;
            Reply::ok(format!("OK {name}"))
        }
        Command::Delete(Delete::Namespace(name)) => {
            service.delete_namespace(principal, &name).await?;
            Reply::ok(format!("OK {name}"))
        }
        Command::Delete(Delete::Processor(name)) => {
            service.delete_processor(principal, &name).await?;
            Reply::ok(format!("OK {name}"))
        }
        Command::Describe(Describe::Flow(name)) => Reply::data(describe::flow_lines(
            &service.describe_flow(principal, &name).await?,
            service.subscription_modes(),
        )),
        Command::Describe(Describe::Processor(name)) => Reply::data(describe::processor_lines(
            &service.describe_processor(principal, &name).await?,
        )),
        Command::Describe(Describe::Subscription(name)) => Reply::data(
            describe::subscription_lines(&service.describe_subscription(principal, &name).await?),
        ),
        Command::List(List::Flows(namespace)) => Reply::data(
            service
                .list_flows(principal, namespace.as_ref())
                .await?
                .into_iter()
                .map(|f| f.name.to_string())
                .collect(),
        ),
        Command::List(List::Namespaces) => Reply::data(
            service
                .list_namespaces(principal)
                .await?
                .into_iter()
                .map(|n| n.name.to_string())
                .collect(),
        ),
        Command::List(List::Subscriptions) => Reply::data(
            service
                .list_subscriptions(principal)
                .await?
                .iter()
                .map(list::subscription_line)
                .collect(),
        ),
        Command::List(List::Processors) => Reply::data(
            service
                .list_processors(principal)
                .await?
                .iter()
                .map(list::processor_line)
                .collect(),
        ),
        Command::Set(Set {
            flow,
            setting: Setting::Visibility(visibility),
        }) => {
            let flow = service.set_visibility(principal, &flow, visibility).await?;
            Reply::ok(format!("OK {} {}", flow.name, flow.visibility.as_str()))
        }
        Command::Set(Set { flow, setting }) => {
            let key = setting.key();
            let flow = service
                .describe_itself(principal, &flow, |description| match setting {
                    Setting::Visibility(_) => {}
                    Setting::Schema(schema) => description.schema = schema,
                    Setting::Rate(rate) => description.rate = rate,
                    Setting::Retention(retention) => description.retention = retention,
                    Setting::Terms(terms) => description.terms = terms,
                    Setting::Contact(contact) => description.contact = contact,
                })
                .await?;
            Reply::ok(format!("OK {} {key}", flow.name))
        }
        Command::Subscribe(subscribe) => {
            let subscription = service
                .subscribe(principal, &subscribe.source, subscribe.local.as_ref())
                .await?;
            Reply::data(vec![subscription.id.to_string()])
        }
        Command::Unsubscribe(unsubscribe) => {
            service
                .unsubscribe(principal, &unsubscribe.subscription)
                .await?;
            Reply::ok(format!("OK {}", unsubscribe.subscription))
        }
        Command::Update(update) => {
            let processor = service
                .update_processor(principal, &update.processor, update.plugin, update.config)
                .await?;
            Reply::ok(format!("OK {}", processor.name))
        }
        Command::Pause(pause) => {
            let processor = service
                .set_processor_state(principal, &pause.processor, RunState::Paused)
                .await?;
            Reply::ok(format!(
                "OK {} {}",
                processor.name,
                processor.state.as_str()
            ))
        }
        Command::Resume(resume) => {
            let processor = service
                .set_processor_state(principal, &resume.processor, RunState::Running)
                .await?;
            Reply::ok(format!(
                "OK {} {}",
                processor.name,
                processor.state.as_str()
            ))
        }
        // Handled by the session before authentication matters.
        Command::Authenticate(_)
        | Command::Help(_)
        | Command::Noop
        | Command::Quit
        | Command::Relay(_)
        | Command::StartTls => {
            Reply::from(&ServiceError::InvalidArgument("unexpected command".into()))
        }
    })
}

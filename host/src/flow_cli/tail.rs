//! `flow tail`: a flow's events as they arrive, read straight from its
//! broker (as DESCRIBE FLOW describes it) with the broker's CloudEvents
//! binding, so that a user sees data without broker tools.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use fnaa_control::client::Client;
use fnaa_dataplane::backoff::RetryConfig;
use fnaa_dataplane::outage::OutageMonitor;
use fnaa_dataplane::transport::{
    BrokerConfig, DeliveryMode, EndpointContext, Received, Source, consumer_name,
};
use fnaa_event::binding::{Binding, Codec};

use super::cli::TailOutput;
use super::exit::{self, Failure};

/// Most events printed per read.
const BATCH: usize = 256;

/// Prints the events of `flow` from now on until Ctrl-C or `count`.
pub async fn tail(
    mut client: Client,
    flow: &str,
    output: TailOutput,
    count: Option<usize>,
) -> Result<(), Failure> {
    let description = client.describe_flow(flow).await?;
    // The session is not needed while tailing: its idle timeout would end it.
    let _ = client.quit().await;
    let field = |key: &str| {
        description
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (kind, topic) = (field("type"), field("topic"));
    let servers: Vec<String> = field("server").split(',').map(str::to_owned).collect();
    let tls = field("tls") == "true";
    let unreadable = |reason: String| {
        Failure::new(
            exit::UNAVAILABLE,
            format!("cannot read {flow} on its {kind} broker: {reason}"),
        )
    };
    let binding = Binding::from_name(&kind)
        .ok_or_else(|| unreadable(format!("no CloudEvents binding for `{kind}`")))?;
    let mut codec = Codec::new(binding, &[]).map_err(|e| unreadable(e.to_string()))?;
    // The broker's credentials, if it needs any, come from the user's
    // environment (RABBITMQ_USER, KAFKA_SASL_USERNAME, ...).
    let env = fnaa_dataplane::process_environment();
    let broker = BrokerConfig::reaching(&kind, &servers, tls)
        .and_then(|config| config.resolve(&*env))
        .map_err(|e| unreadable(e.to_string()))?;
    let pipeline = format!("tail-{}-{}", std::process::id(), now_millis());
    let context = EndpointContext::new(
        &pipeline,
        "source",
        DeliveryMode::Latest,
        RetryConfig::default(),
        Arc::new(OutageMonitor::new(
            format!("{kind} broker of {flow}"),
            Duration::from_secs(30),
        )),
    );
    let settings = broker.flow_source(&pipeline, &[&topic]);
    let mut source = broker
        .source(&context, &settings)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    // Announced once it consumes: what is published after the line shows
    // is printed.
    if tokio::time::timeout(Duration::from_secs(30), source.ready())
        .await
        .is_err()
    {
        eprintln!("flow: the {kind} broker of {flow} does not answer yet; waiting");
        source.ready().await;
    }
    eprintln!("tailing {flow} ({})", source.describe());
    let printed = tokio::select! {
        printed = print_events(&mut *source, &mut codec, output, count) => printed,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    drop(source);
    // A broker that keeps consumer state (a Kafka group, a durable queue)
    // must not keep this reader's.
    if let Ok(admin) = broker.admin()
        && let Err(error) = admin.delete_consumer(&consumer_name(&pipeline)).await
    {
        eprintln!("flow: could not remove this reader's state at the broker: {error}");
    }
    printed
}

async fn print_events(
    source: &mut dyn Source,
    codec: &mut Codec,
    output: TailOutput,
    count: Option<usize>,
) -> Result<(), Failure> {
    let mut left = count.unwrap_or(usize::MAX);
    let mut stdout = std::io::stdout().lock();
    while left > 0 {
        let batch: Vec<Received> = source
            .recv(BATCH.min(left), Duration::from_millis(20))
            .await
            .map_err(|e| Failure::new(exit::UNAVAILABLE, e.to_string()))?;
        for received in batch {
            if left == 0 {
                break;
            }
            let now = now_millis();
            let event = match codec.decode(
                &received.message,
                ((now / 1000) as u64, ((now % 1000) * 1_000_000) as u32),
            ) {
                Ok(event) => event,
                Err(error) => {
                    eprintln!(
                        "flow: a message of {} bytes that is not a CloudEvent: {error}",
                        received.message.payload.len()
                    );
                    continue;
                }
            };
            let line = match output {
                TailOutput::Json => fnaa_event::to_json(&event),
                TailOutput::Data => event.data.clone().unwrap_or_default(),
                TailOutput::Summary => format!(
                    "{}\t{}\t{}\t{}",
                    event.time.as_deref().unwrap_or("-"),
                    event.ty,
                    event.subject.as_deref().unwrap_or("-"),
                    event.id
                )
                .into_bytes(),
            };
            let written = stdout
                .write_all(&line)
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush());
            if written.is_err() {
                // The reader went away (`flow tail | head`).
                return Ok(());
            }
            left -= 1;
        }
    }
    Ok(())
}

fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

//! One view over rumqttc's two clients (MQTT 3.1.1 in `rumqttc`, MQTT 5 in
//! `rumqttc::v5`), so that the source and the sink are written once.

use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5 as p5;
use rumqttc::{Outgoing, QoS as QoS4};

use super::{MqttBrokerConfig, MqttVersion, Qos};
use crate::transport::TransportError;

/// How to connect.
pub(crate) struct Options {
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean: bool,
    /// MQTT 5 session expiry for persistent sessions, in seconds.
    pub session_expiry_s: u32,
    pub manual_acks: bool,
    /// Outgoing QoS 1/2 publishes in flight at most.
    pub inflight: u16,
}

#[derive(Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

pub(crate) enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// A message that arrived.
pub(crate) struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub pkid: u16,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

/// What the event loop reports, reduced to what we use.
pub(crate) enum Ev {
    /// Connected; whether the broker still had our session.
    Connected {
        session_present: bool,
    },
    Publish(Incoming),
    /// An outgoing publish was written with this packet id (0 for QoS 0).
    Written(u16),
    /// PUBACK (QoS 1): `error` when the broker refused (MQTT 5 reason code).
    Acked {
        pkid: u16,
        error: Option<String>,
    },
    /// PUBREC (QoS 2, first half): `error` when the broker refused.
    Received {
        pkid: u16,
        error: Option<String>,
    },
    /// PUBCOMP (QoS 2, done).
    Completed {
        pkid: u16,
    },
    /// SUBACK: filters the broker refused.
    Subscribed {
        refused: usize,
    },
    Other,
}

/// Why a publish could not be handed to the client.
pub(crate) enum PublishError {
    /// The request channel is full; try again after polling.
    Full,
    /// The message cannot be sent on this protocol.
    Invalid(String),
}

fn qos4(q: Qos) -> QoS4 {
    match q {
        Qos::AtMostOnce => QoS4::AtMostOnce,
        Qos::AtLeastOnce => QoS4::AtLeastOnce,
        Qos::ExactlyOnce => QoS4::ExactlyOnce,
    }
}

fn qos5(q: Qos) -> QoS5 {
    match q {
        Qos::AtMostOnce => QoS5::AtMostOnce,
        Qos::AtLeastOnce => QoS5::AtLeastOnce,
        Qos::ExactlyOnce => QoS5::ExactlyOnce,
    }
}

/// A topic name we may publish to: non-empty, no wildcards, no NUL.
pub(crate) fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// Creates a client and its event loop; nothing connects until the loop is
/// polled.
pub(crate) fn create(
    broker: &MqttBrokerConfig,
    options: &Options,
) -> Result<(Client, Loop), TransportError> {
    let tls = broker.tls_config()?;
    // Enough room for a full window of publishes, the acks of a full window
    // of incoming messages, and subscriptions.
    let capacity = usize::from(options.inflight) * 2 + 64;
    match broker.version {
        MqttVersion::V311 => {
            let mut o = rumqttc::MqttOptions::new(&options.client_id, broker.host(), broker.port());
            o.set_keep_alive(broker.keep_alive())
                .set_clean_session(options.clean)
                .set_manual_acks(options.manual_acks)
                .set_inflight(options.inflight.max(1))
                .set_request_channel_capacity(capacity)
                .set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
            if let (Some(u), Some(p)) = (&broker.username, &broker.password) {
                o.set_credentials(u, p.expose());
            } else if let Some(u) = &broker.username {
                o.set_credentials(u, "");
            }
            if let Some(tls) = tls {
                o.set_transport(rumqttc::Transport::tls_with_config(
                    rumqttc::TlsConfiguration::Rustls(tls),
                ));
            }
            let (client, mut eventloop) = rumqttc::AsyncClient::new(o, capacity);
            let mut network = eventloop.network_options();
            network.set_tcp_nodelay(true);
            network.set_connection_timeout(5);
            eventloop.set_network_options(network);
            Ok((Client::V4(client), Loop::V4(Box::new(eventloop))))
        }
        MqttVersion::V5 => {
            let mut o =
                rumqttc::v5::MqttOptions::new(&options.client_id, broker.host(), broker.port());
            o.set_keep_alive(broker.keep_alive())
                .set_clean_start(options.clean)
                .set_manual_acks(options.manual_acks)
                .set_outgoing_inflight_upper_limit(options.inflight.max(1))
                .set_request_channel_capacity(capacity)
                .set_max_packet_size(Some(16 * 1024 * 1024));
            if !options.clean {
                o.set_session_expiry_interval(Some(options.session_expiry_s.max(1)));
            }
            if let (Some(u), Some(p)) = (&broker.username, &broker.password) {
                o.set_credentials(u, p.expose());
            } else if let Some(u) = &broker.username {
                o.set_credentials(u, "");
            }
            if let Some(tls) = tls {
                o.set_transport(rumqttc::Transport::tls_with_config(
                    rumqttc::TlsConfiguration::Rustls(tls),
                ));
            }
            let mut network = o.network_options();
            network.set_tcp_nodelay(true);
            network.set_connection_timeout(5);
            o.set_network_options(network);
            let (client, eventloop) = rumqttc::v5::AsyncClient::new(o, capacity);
            Ok((Client::V5(client), Loop::V5(Box::new(eventloop))))
        }
    }
}

impl Loop {
    /// The next event; an error means the connection is down (polling again
    /// reconnects).
    pub(crate) async fn poll(&mut self) -> Result<Ev, String> {
        match self {
            Loop::V4(l) => {
                use rumqttc::{Event, Packet};
                match l.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(c)) => Ok(Ev::Connected {
                        session_present: c.session_present,
                    }),
                    Event::Incoming(Packet::Publish(p)) => Ok(Ev::Publish(Incoming {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                        qos: p.qos as u8,
                        pkid: p.pkid,
                        content_type: None,
                        user_properties: Vec::new(),
                    })),
                    Event::Incoming(Packet::PubAck(a)) => Ok(Ev::Acked {
                        pkid: a.pkid,
                        error: None,
                    }),
                    Event::Incoming(Packet::PubRec(r)) => Ok(Ev::Received {
                        pkid: r.pkid,
                        error: None,
                    }),
                    Event::Incoming(Packet::PubComp(c)) => Ok(Ev::Completed { pkid: c.pkid }),
                    Event::Incoming(Packet::SubAck(s)) => Ok(Ev::Subscribed {
                        refused: s
                            .return_codes
                            .iter()
                            .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                            .count(),
                    }),
                    Event::Outgoing(Outgoing::Publish(pkid)) => Ok(Ev::Written(pkid)),
                    _ => Ok(Ev::Other),
                }
            }
            Loop::V5(l) => {
                use p5::Packet;
                use rumqttc::v5::Event;
                match l.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(c)) => Ok(Ev::Connected {
                        session_present: c.session_present,
                    }),
                    Event::Incoming(Packet::Publish(p)) => {
                        let (content_type, user_properties) = match p.properties {
                            Some(props) => (props.content_type, props.user_properties),
                            None => (None, Vec::new()),
                        };
                        Ok(Ev::Publish(Incoming {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload.to_vec(),
                            qos: p.qos as u8,
                            pkid: p.pkid,
                            content_type,
                            user_properties,
                        }))
                    }
                    Event::Incoming(Packet::PubAck(a)) => {
                        let error = match a.reason {
                            p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers => {
                                None
                            }
                            other => Some(format!("broker refused the message: {other:?}")),
                        };
                        Ok(Ev::Acked {
                            pkid: a.pkid,
                            error,
                        })
                    }
                    Event::Incoming(Packet::PubRec(r)) => {
                        let error = match r.reason {
                            p5::PubRecReason::Success | p5::PubRecReason::NoMatchingSubscribers => {
                                None
                            }
                            other => Some(format!("broker refused the message: {other:?}")),
                        };
                        Ok(Ev::Received {
                            pkid: r.pkid,
                            error,
                        })
                    }
                    Event::Incoming(Packet::PubComp(c)) => Ok(Ev::Completed { pkid: c.pkid }),
                    Event::Incoming(Packet::SubAck(s)) => Ok(Ev::Subscribed {
                        refused: s
                            .return_codes
                            .iter()
                            .filter(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                            .count(),
                    }),
                    Event::Outgoing(Outgoing::Publish(pkid)) => Ok(Ev::Written(pkid)),
                    _ => Ok(Ev::Other),
                }
            }
        }
    }
}

impl Client {
    /// Hands a publish to the event loop without waiting.
    pub(crate) fn try_publish(
        &self,
        topic: &str,
        qos: Qos,
        retain: bool,
        payload: &[u8],
        content_type: Option<&str>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), PublishError> {
        if !valid_topic_name(topic) {
            return Err(PublishError::Invalid(format!(
                "`{topic}` is not a valid MQTT topic name"
            )));
        }
        match self {
            Client::V4(c) => {
                if !headers.is_empty() {
                    return Err(PublishError::Invalid(
                        "MQTT 3.1.1 cannot carry headers (CloudEvents binary mode); use structured mode or MQTT 5".into(),
                    ));
                }
                c.try_publish(topic, qos4(qos), retain, payload.to_vec())
                    .map_err(|_| PublishError::Full)
            }
            Client::V5(c) => {
                let mut user_properties = Vec::with_capacity(headers.len());
                for (name, value) in headers {
                    match std::str::from_utf8(value) {
                        Ok(v) => user_properties.push((name.clone(), v.to_owned())),
                        Err(_) => {
                            return Err(PublishError::Invalid(format!(
                                "header `{name}` is not UTF-8; MQTT 5 user properties are text"
                            )));
                        }
                    }
                }
                let properties = p5::PublishProperties {
                    content_type: content_type.map(str::to_owned),
                    user_properties,
                    ..Default::default()
                };
                c.try_publish_with_properties(
                    topic,
                    qos5(qos),
                    retain,
                    payload.to_vec(),
                    properties,
                )
                .map_err(|_| PublishError::Full)
            }
        }
    }

    /// Subscribes to `filters` without waiting.
    pub(crate) fn try_subscribe(&self, filters: &[String], qos: Qos) -> Result<(), TransportError> {
        let result = match self {
            Client::V4(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|f| rumqttc::SubscribeFilter::new(f.clone(), qos4(qos))),
                )
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|f| p5::Filter::new(f.clone(), qos5(qos))),
                )
                .map_err(|e| e.to_string()),
        };
        result.map_err(|e| TransportError::Client {
            broker: "mqtt",
            reason: format!("cannot subscribe to {filters:?}: {e}"),
        })
    }

    /// Acknowledges an incoming QoS 1 (PUBACK) or QoS 2 (PUBREC) message
    /// without waiting; `Err` when the request channel is full.
    pub(crate) fn try_ack(&self, qos: u8, pkid: u16) -> Result<(), ()> {
        match (self, qos) {
            (_, 0) => Ok(()),
            (Client::V4(c), q) => {
                let mut p = rumqttc::Publish::new(
                    "",
                    if q == 2 {
                        QoS4::ExactlyOnce
                    } else {
                        QoS4::AtLeastOnce
                    },
                    Vec::new(),
                );
                p.pkid = pkid;
                c.try_ack(&p).map_err(|_| ())
            }
            (Client::V5(c), q) => {
                let mut p = p5::Publish::new(
                    "",
                    if q == 2 {
                        QoS5::ExactlyOnce
                    } else {
                        QoS5::AtLeastOnce
                    },
                    Vec::new(),
                    None,
                );
                p.pkid = pkid;
                c.try_ack(&p).map_err(|_| ())
            }
        }
    }

    /// Sends DISCONNECT without waiting.
    pub(crate) fn try_disconnect(&self) {
        match self {
            Client::V4(c) => {
                let _ = c.try_disconnect();
            }
            Client::V5(c) => {
                let _ = c.try_disconnect();
            }
        }
    }
}

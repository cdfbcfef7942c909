//! One ingestion request: authorise, route, decode, store. I/O-free apart
//! from the outbox append, so every answer is unit-tested.

use std::sync::Arc;

use fnaa_dataplane::transport::Message;
use fnaa_dataplane::transport::outbox::{Outbox, OutboxError};
use fnaa_event::binding::http::decode_request;
use fnaa_event::binding::{Destination, encode_structured};
use subtle::ConstantTimeEq as _;

use super::config::Credential;

/// What the handler needs of the host: where events go and who may post.
#[derive(Debug)]
pub struct Ingest {
    pub outbox: Arc<Outbox>,
    pub credential: Credential,
    pub topics: Vec<String>,
    pub max_events: usize,
}

/// A request as the handler sees it (the body already read within its
/// limit).
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The answer: a status and a one-line JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    fn error(status: u16, message: impl std::fmt::Display) -> Response {
        Response {
            status,
            body: serde_json::json!({ "error": message.to_string() }).to_string(),
        }
    }
}

impl Ingest {
    /// Handles one request. Storage happens on a blocking thread: the
    /// append waits for the disk.
    pub async fn handle(self: &Arc<Self>, request: Request) -> Response {
        let (topic, messages) = match self.prepare(request) {
            Ok(ready) => ready,
            Err(response) => return response,
        };
        let count = messages.len();
        if count == 0 {
            return accepted(0);
        }
        let outbox = self.outbox.clone();
        let stored =
            tokio::task::spawn_blocking(move || outbox.append(&topic, &messages).map(|_| ())).await;
        match stored {
            Ok(Ok(())) => accepted(count),
            Ok(Err(error @ OutboxError::Full { .. })) => {
                tracing::warn!(%error, "ingestion refused a batch: the outbox is full");
                Response::error(507, error)
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "ingestion cannot store events");
                Response::error(503, error)
            }
            Err(error) => Response::error(503, format!("storage task failed: {error}")),
        }
    }

    /// Everything before storage: the checks in the order a client would
    /// fix them, each with its own status.
    fn prepare(&self, request: Request) -> Result<(String, Vec<Message>), Response> {
        let Some(topic) = request.path.strip_prefix("/events/") else {
            return Err(Response::error(
                404,
                format!(
                    "no such resource {:?}: post events to /events/<topic>",
                    request.path
                ),
            ));
        };
        if request.method != "POST" {
            return Err(Response::error(
                405,
                format!("method {} is not allowed: POST events", request.method),
            ));
        }
        self.authorise(request.authorization.as_deref())?;
        if !self.topics.iter().any(|t| t == topic) {
            return Err(Response::error(
                404,
                format!("topic {topic:?} is not open for ingestion (see [ingest] topics)"),
            ));
        }
        let events = decode_request(
            request.content_type.as_deref(),
            request.headers,
            &request.body,
        )
        .map_err(|error| Response::error(400, format!("not a CloudEvent: {error}")))?;
        if events.len() > self.max_events {
            return Err(Response::error(
                413,
                format!(
                    "the batch carries {} events; at most {} are accepted per request",
                    events.len(),
                    self.max_events
                ),
            ));
        }
        let messages = events
            .iter()
            .map(|event| Message {
                destination: Destination::default(),
                ..encode_structured(event)
            })
            .collect();
        Ok((topic.to_owned(), messages))
    }

    fn authorise(&self, authorization: Option<&[u8]>) -> Result<(), Response> {
        let Credential::Bearer(token) = &self.credential else {
            return Ok(());
        };
        let presented = authorization.and_then(|value| {
            let (scheme, rest) = value.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"Bearer ")
                .then(|| rest.trim_ascii())
        });
        match presented {
            Some(p) if bool::from(p.ct_eq(token.as_bytes())) => Ok(()),
            Some(_) => Err(Response::error(401, "the bearer token is not valid")),
            None => Err(Response::error(
                401,
                "authentication required: send Authorization: Bearer <token>",
            )),
        }
    }
}

fn accepted(count: usize) -> Response {
    Response {
        status: 202,
        body: serde_json::json!({ "accepted": count }).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(dir: &std::path::Path, limit: u64) -> Arc<Ingest> {
        Arc::new(Ingest {
            outbox: Outbox::open(&dir.join("outbox.redb"), limit).expect("opens"),
            credential: Credential::Bearer("tok".into()),
            topics: vec!["kytos".into()],
            max_events: 3,
        })
    }

    fn post(body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/events/kytos".into(),
            authorization: Some(b"Bearer tok".to_vec()),
            content_type: Some("application/cloudevents-batch+json".into()),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    const TWO: &str = r#"[{"specversion":"1.0","id":"1","source":"/k","type":"t"},
                          {"specversion":"1.0","id":"2","source":"/k","type":"t"}]"#;

    #[tokio::test]
    async fn accepted_events_are_in_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ingest = ingest(dir.path(), 1 << 20);
        let response = ingest.handle(post(TWO)).await;
        assert_eq!(response, accepted(2));
        let stored = ingest.outbox.read("kytos", 0, 10).expect("reads");
        let ids: Vec<String> = stored
            .iter()
            .map(|s| {
                fnaa_event::binding::decode_structured(&s.message.payload)
                    .expect("structured")
                    .id
            })
            .collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[tokio::test]
    async fn every_refusal_names_its_cause_and_stores_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ingest = ingest(dir.path(), 1 << 20);
        let cases: Vec<(Request, u16, &str)> = vec![
            (
                Request {
                    authorization: None,
                    ..post(TWO)
                },
                401,
                "authentication required",
            ),
            (
                Request {
                    authorization: Some(b"Bearer nope".to_vec()),
                    ..post(TWO)
                },
                401,
                "not valid",
            ),
            (
                Request {
                    path: "/events/other".into(),
                    ..post(TWO)
                },
                404,
                "\\\"other\\\" is not open",
            ),
            (
                Request {
                    path: "/".into(),
                    ..post(TWO)
                },
                404,
                "/events/<topic>",
            ),
            (
                Request {
                    method: "GET".into(),
                    ..post(TWO)
                },
                405,
                "method GET",
            ),
            (post("[{}]"), 400, "event 0 of the batch"),
            (
                post(&format!(
                    "[{}]",
                    ["{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/k\",\"type\":\"t\"}"; 4]
                        .join(",")
                )),
                413,
                "at most 3",
            ),
        ];
        for (request, status, needle) in cases {
            let response = ingest.handle(request).await;
            assert_eq!(response.status, status, "{}", response.body);
            assert!(response.body.contains(needle), "{}", response.body);
        }
        assert_eq!(ingest.outbox.head("kytos").expect("head"), 0);
    }

    #[tokio::test]
    async fn a_full_outbox_answers_507_and_keeps_what_it_had() {
        // What one batch takes, measured on an outbox of its own.
        let scratch = tempfile::tempdir().expect("tempdir");
        let measure = ingest(scratch.path(), 1 << 20);
        assert_eq!(measure.handle(post(TWO)).await.status, 202);
        let (one_batch, _) = measure.outbox.usage();
        let dir = tempfile::tempdir().expect("tempdir");
        let ingest = ingest(dir.path(), one_batch + one_batch / 2);
        assert_eq!(ingest.handle(post(TWO)).await.status, 202);
        let response = ingest.handle(post(TWO)).await;
        assert_eq!(response.status, 507, "{}", response.body);
        assert!(response.body.contains("is full"), "{}", response.body);
        assert_eq!(ingest.outbox.read("kytos", 0, 10).expect("reads").len(), 2);
    }
}

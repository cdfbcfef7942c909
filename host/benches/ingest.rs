//! The HTTP ingestion path (`[ingest]`): events per second POSTed as
//! CloudEvents batches over one keep-alive connection on loopback into an
//! outbox on disk, side by side with the same batches appended to an
//! outbox directly (the durable commit alone: the floor of the path).
//!
//! Run: `cargo bench -p fnaa-host --bench ingest` (`FNAA_BENCH_BATCH`,
//! `FNAA_BENCH_BATCHES`, `FNAA_BENCH_ROUNDS` change the load). Prints each
//! round and the medians.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use fnaa_dataplane::transport::Message;
use fnaa_dataplane::transport::outbox::Outbox;
use fnaa_event::binding::encode_structured;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A batch of `n` link events shaped like the Kytos NApp's.
fn batch(n: usize, round: usize) -> (String, Vec<fnaa_event::Event>) {
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "specversion": "1.0", "id": format!("{round}-{i}"), "source": "kytos://bench",
                "type": "kytos/topology.link_up", "time": "2026-12-03T10:00:00Z",
                "subject": "7bf9dafc2fdb605761f031013b8f299c",
                "datacontenttype": "application/json",
                "data": { "link": { "id": "7bf9dafc2fdb605761f031013b8f299c", "active": true,
                          "endpoint_a": { "switch": "00:00:00:00:00:00:00:01", "port_number": 1 },
                          "endpoint_b": { "switch": "00:00:00:00:00:00:00:02", "port_number": 1 } },
                          "reason": "bench" }
            })
        })
        .collect();
    let body = serde_json::to_string(&events).unwrap();
    let parsed = events
        .iter()
        .map(|e| fnaa_event::from_json(e.to_string().as_bytes()).unwrap())
        .collect();
    (body, parsed)
}

fn post(stream: &mut BufReader<TcpStream>, port: u16, body: &str) {
    // One write per request: several small writes meet Nagle's algorithm
    // and the peer's delayed ACK (40 ms each).
    let request = format!(
        "POST /events/kytos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer bench\r\n\
         Content-Type: application/cloudevents-batch+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(request.as_bytes()).unwrap();
    let mut status = String::new();
    stream.read_line(&mut status).unwrap();
    assert!(status.contains(" 202 "), "{status}");
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut rest = vec![0; length];
    stream.read_exact(&mut rest).unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let size = if quick {
        10
    } else {
        env("FNAA_BENCH_BATCH", 100)
    };
    let batches = if quick {
        3
    } else {
        env("FNAA_BENCH_BATCHES", 200)
    };
    let rounds = if quick {
        1
    } else {
        env("FNAA_BENCH_ROUNDS", 5)
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config: fnaa_host::config::Config = toml::from_str(&format!(
        "[brokers.connections.inbox]\ntype = \"outbox\"\npath = \"{}/http.redb\"\n\
         [ingest]\nlisten = \"127.0.0.1:0\"\noutbox = \"inbox\"\ntopics = [\"kytos\"]\nanonymous = true\n",
        dir.path().display()
    ))
    .unwrap();
    // The token by file: setting an environment variable is unsafe.
    let token = dir.path().join("token");
    std::fs::write(&token, "bench").unwrap();
    let mut ingest = config.ingest.clone().unwrap();
    ingest.anonymous = false;
    ingest.token_file = Some(token);
    let server = runtime
        .block_on(fnaa_host::ingest::start(&ingest, &config.brokers))
        .unwrap();
    let port = server.local_addr.port();
    let direct = Outbox::open(&dir.path().join("direct.redb"), u64::MAX).unwrap();
    let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let (mut http_rates, mut direct_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let prepared: Vec<(String, Vec<fnaa_event::Event>)> = (0..batches)
            .map(|b| batch(size, round * batches + b))
            .collect();
        let started = Instant::now();
        for (body, _) in &prepared {
            post(&mut stream, port, body);
        }
        let http = (size * batches) as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        for (_, events) in &prepared {
            let messages: Vec<Message> = events.iter().map(encode_structured).collect();
            direct.append("kytos", &messages).unwrap();
        }
        let native = (size * batches) as f64 / started.elapsed().as_secs_f64();
        println!(
            "round {round}: http {http:.0} events/s, direct append {native:.0} events/s, ratio {:.2}",
            http / native
        );
        http_rates.push(http);
        direct_rates.push(native);
    }
    let (http, native) = (median(http_rates), median(direct_rates));
    println!(
        "median over {rounds} rounds of {batches} batches of {size}: http {http:.0} events/s, direct append {native:.0} events/s, ratio {:.2}",
        http / native
    );
    drop(server);
}

//! A Kafka -> Kafka pipeline survives its host being killed with SIGKILL,
//! as a user meets it: `fnaa serve` runs a static `[[pipelines]]` entry
//! copying a topic of a tansu broker (started here, kept running: only the
//! host dies) to another one, while a producer writes a long numbered
//! stream of CloudEvents into it. The host is killed (`kill -9 <pid>`) at
//! random points ten times and started again each time. A reader without
//! a consumer group (partitions assigned from their beginning, read to
//! their end, like `kcat -C -o beginning -e`: it depends on nothing the
//! dead host left in the group coordinator) checks that
//!
//! * every restart resumes within 2 s (from the restart to the first new
//!   event in the output topic);
//! * no event is missing from the output topic;
//! * duplicates stay within the in-flight window of each kill.
//!
//! `FNAA_CRASH_SEED=<n>` repeats a run (the seed is printed).
//!
//! The producer and the readers are librdkafka 2.12 clients (the `rdkafka`
//! crate): `kcat` 1.7, built on librdkafka 2.0, cannot parse tansu 0.6's
//! ApiVersions answer and talks to nothing here.
#![allow(clippy::unwrap_used)]

mod common;

/// The data-plane tests' brokers: tansu started per test.
#[path = "../dataplane/tests/common/mod.rs"]
mod brokers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const KILLS: usize = 10;
/// Events produced at least.
const MIN_EVENTS: usize = 20_000;
/// Events produced per second.
const RATE: usize = 1_000;
const BATCH_SIZE: usize = 200;
const QUEUE_BATCHES: usize = 4;
/// What a kill may duplicate at most: the batches in flight at the sink
/// (`queue_batches`), one whose commit was on its way, one more for slack.
const IN_FLIGHT_WINDOW: usize = (QUEUE_BATCHES + 2) * BATCH_SIZE;
/// From a restart to the first new output event, at most.
const RESUME_WITHIN: Duration = Duration::from_secs(2);

/// A tiny deterministic random sequence (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A duration between `lo` and `hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// `fnaa serve`, killed with SIGKILL by its own pid.
struct Host {
    child: Option<Child>,
    log: PathBuf,
}

impl Host {
    fn start(config: &Path, log: PathBuf) -> Host {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fnaa"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Host {
            child: Some(child),
            log,
        }
    }

    /// `kill -9 <pid>`, then reaps it; fails when it was not running.
    fn kill9(&mut self) {
        self.assert_running();
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status()
                .unwrap();
            let _ = child.wait();
            assert!(status.success(), "kill -9 {} failed", child.id());
        }
    }

    /// Fails when the host exited by itself.
    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "fnaa serve exited by itself with {status}; its log ends with:\n{}",
                tail(&self.log)
            );
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// What the group-less reader of the output topic saw: (when, offset,
/// event id), in the order read.
#[derive(Default)]
struct Seen {
    records: Vec<(Instant, i64, String)>,
    ids: HashSet<String>,
}

/// The `id` of a structured-mode CloudEvent.
fn event_id(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("<not a CloudEvent: {}>", String::from_utf8_lossy(payload)))
}

/// A consumer without group membership or committed offsets, reading
/// `partitions` of `topic` from their beginning (librdkafka wants a group
/// id for `assign`; nothing is asked of the group coordinator); `eof`:
/// it says when it reached the end of a partition.
fn groupless(bootstrap: &str, topic: &str, partitions: i32, eof: bool) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "crash-test-reader-never-commits")
        .set("enable.partition.eof", eof.to_string())
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Follows partition 0 of `topic` from its beginning, without a consumer
/// group, until `stop`.
fn follow(bootstrap: &str, topic: &str, stop: Arc<AtomicBool>) -> Arc<Mutex<Seen>> {
    let consumer = groupless(bootstrap, topic, 1, false);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let id = event_id(m.payload().unwrap_or_default());
                    let mut seen = s.lock().unwrap();
                    seen.ids.insert(id.clone());
                    seen.records.push((Instant::now(), m.offset(), id));
                }
                Some(Err(e)) => eprintln!("output reader: {e}"),
                None => {}
            }
        }
    });
    seen
}

/// Reads `partitions` of `topic` once, from their beginning to their end,
/// without a consumer group (what `kcat -C -o beginning -e` does: the end
/// is where a fetch answer's high watermark says; tansu 0.6 answers an
/// offset query for the end with the start of the last batch):
/// (partition, offset, event id) of every record.
fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<(i32, i64, String)> {
    let consumer = groupless(bootstrap, topic, partitions, true);
    let mut records = Vec::new();
    let mut ended = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ended.len() < usize::try_from(partitions).unwrap() {
        assert!(
            Instant::now() < deadline,
            "reading {topic} to its end took over 60 s; ended: {ended:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push((
                m.partition(),
                m.offset(),
                event_id(m.payload().unwrap_or_default()),
            )),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    records
}

/// One numbered CloudEvent, structured mode.
fn event(n: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"e-{n}","source":"/crash","type":"crash.tick","datacontenttype":"application/json","data":{{"n":{n}}}}}"#
    )
}

/// Counts failed deliveries.
#[derive(Default)]
struct Deliveries {
    failed: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            eprintln!("producer: delivery failed: {e}");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Produces numbered events to `topic` at [`RATE`] (in multi-record
/// batches, as any batching producer does) until `stop` is set and at
/// least [`MIN_EVENTS`] went; returns how many, once all are delivered.
fn produce(
    bootstrap: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
) -> usize {
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // Batches of tens of records: a pipeline batch can end inside one.
        .set("linger.ms", "100")
        .set("acks", "all")
        .create_with_context(Deliveries::default())
        .unwrap();
    let tick = Duration::from_millis(10);
    let per_tick = RATE / 100;
    let started = Instant::now();
    let mut n = 0;
    while !(stop.load(Ordering::Relaxed) && n >= MIN_EVENTS) {
        for _ in 0..per_tick {
            let payload = event(n);
            let mut record: BaseRecord<'_, (), String> = BaseRecord::to(topic)
                .payload(&payload)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "content-type",
                    value: Some("application/cloudevents+json"),
                }));
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        assert!(
                            matches!(
                                e,
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                            ),
                            "producer: {e}"
                        );
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            n += 1;
        }
        produced.store(n, Ordering::Relaxed);
        let due = started + tick * u32::try_from(n / per_tick).unwrap();
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let failed = producer.context().failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} of {n} events were not produced");
    n
}

/// Waits until `seen` has had no new record for `quiet`; returns the next
/// output offset (what a restarted host writes first).
fn settle(seen: &Mutex<Seen>, quiet: Duration) -> i64 {
    let mut last = usize::MAX;
    let mut since = Instant::now();
    loop {
        let (count, next) = {
            let s = seen.lock().unwrap();
            (
                s.records.len(),
                s.records.iter().map(|r| r.1 + 1).max().unwrap_or(0),
            )
        };
        if count != last {
            last = count;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return next;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the first output record at `from` or later; returns when it
/// was read.
fn first_from(seen: &Mutex<Seen>, from: i64, host: &mut Host, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        host.assert_running();
        if let Some(r) = seen.lock().unwrap().records.iter().find(|r| r.1 >= from) {
            return Some(r.0);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn a_kafka_pipeline_resumes_at_once_after_kill_9_and_loses_nothing() {
    let tansu = brokers::Tansu::start();
    let bootstrap = tansu.bootstrap();
    let (input, output) = ("crash-in", "crash-out");
    {
        use fnaa_dataplane::transport::kafka::{KafkaAdmin, KafkaBrokerConfig};
        let tokio = tokio::runtime::Runtime::new().unwrap();
        tokio.block_on(async {
            let admin = KafkaAdmin::new(&KafkaBrokerConfig::new(&bootstrap)).unwrap();
            admin.create_topic(input, 3, 1).await.unwrap();
            admin.create_topic(output, 1, 1).await.unwrap();
        });
    }
    let seed = std::env::var("FNAA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill -9 test: seed {seed} (FNAA_CRASH_SEED={seed} repeats this run)");
    let mut random = Random(seed);

    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[flows]
broker = "kafka"

[brokers.connections.kafka]
type = "kafka"
bootstrap_servers = "{bootstrap}"

[[pipelines]]
name = "crash-copy"
batch_size = {BATCH_SIZE}
queue_batches = {QUEUE_BATCHES}
metrics_interval_s = 0
source = {{ broker = "kafka", kafka = {{ topics = ["{input}"] }} }}
sink = {{ broker = "kafka", connector_config = {{ mode = "structured" }}, kafka = {{ topic = "{output}" }} }}
"#
    );
    let config = common::write_config(
        dir.path(),
        common::free_port(),
        common::free_port(),
        common::free_port(),
        &extra,
    );
    let reading = Arc::new(AtomicBool::new(false));
    let seen = follow(&bootstrap, output, reading.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicUsize::new(0));
    let feeding = {
        let (bootstrap, stop, produced) = (bootstrap.clone(), stop.clone(), produced.clone());
        std::thread::spawn(move || produce(&bootstrap, input, stop, produced))
    };

    // The first start compiles the connector plugins: not timed.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut host = Host::start(&config, logs.join("fnaa-0.log"));
    if first_from(&seen, 0, &mut host, Duration::from_secs(120)).is_none() {
        panic!(
            "the pipeline copied nothing within 120 s of the first start; its log:\n{}",
            tail(&host.log)
        );
    }

    // (restart time, first output offset after it, resume time)
    let mut restarts: Vec<(i64, Option<Duration>)> = Vec::new();
    for k in 1..=KILLS {
        // Every other kill early, while the restarted host catches up (its
        // batches then end inside the producer's: it resumes mid-batch).
        std::thread::sleep(if k % 2 == 1 {
            random.millis(20, 400)
        } else {
            random.millis(400, 1500)
        });
        host.kill9();
        let killed_at = produced.load(Ordering::Relaxed);
        // Whatever the dead host wrote has reached the reader.
        let from = settle(&seen, Duration::from_millis(600));
        std::thread::sleep(random.millis(0, 500));
        let restarted = Instant::now();
        host = Host::start(&config, logs.join(format!("fnaa-{k}.log")));
        let resumed =
            first_from(&seen, from, &mut host, Duration::from_secs(15)).map(|t| t - restarted);
        eprintln!(
            "kill {k}: killed with {killed_at} events produced; output resumed at offset {from} {}",
            match resumed {
                Some(d) => format!("{} ms after the restart", d.as_millis()),
                None => "NEVER (15 s)".to_owned(),
            }
        );
        restarts.push((from, resumed));
        if resumed.is_none() {
            break;
        }
    }

    stop.store(true, Ordering::Relaxed);
    let total = feeding.join().unwrap();
    let inputs = read_all(&bootstrap, input, 3);
    let input_ids: HashSet<&str> = inputs.iter().map(|r| r.2.as_str()).collect();
    if input_ids.len() != total {
        let absent: Vec<usize> = (0..total)
            .filter(|n| !input_ids.contains(format!("e-{n}").as_str()))
            .collect();
        for p in 0..3 {
            let offsets: Vec<i64> = inputs.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
            let gaps: Vec<(i64, i64)> = offsets
                .windows(2)
                .filter(|w| w[1] != w[0] + 1)
                .map(|w| (w[0], w[1]))
                .collect();
            eprintln!(
                "input partition {p}: {} records, last offset {:?}, gaps {gaps:?}",
                offsets.len(),
                offsets.last()
            );
        }
        eprintln!("absent from the input: {absent:?}");
    }
    assert_eq!(
        (inputs.len(), input_ids.len()),
        (total, total),
        "the input topic does not hold the {total} events produced"
    );

    // The last host copies the rest.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().ids.len() < total && Instant::now() < deadline {
        host.assert_running();
        std::thread::sleep(Duration::from_millis(50));
    }
    settle(&seen, Duration::from_millis(600));
    let last_log = host.log.clone();
    drop(host);

    reading.store(true, Ordering::Relaxed);
    let records = read_all(&bootstrap, output, 1);
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        *copies.entry(r.2.as_str()).or_default() += 1;
    }
    let missing: Vec<usize> = (0..total)
        .filter(|n| !copies.contains_key(format!("e-{n}").as_str()))
        .collect();
    let strangers = copies.keys().filter(|id| !input_ids.contains(**id)).count();
    let duplicates = records.len() - copies.len();
    // Duplicates by restart: records written after restart k whose event
    // had been written before it.
    let mut first_offset: HashMap<&str, i64> = HashMap::new();
    for r in &records {
        first_offset.entry(r.2.as_str()).or_insert(r.1);
    }
    let mut by_restart: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &records {
        let first = first_offset[r.2.as_str()];
        if first < r.1 {
            let k = restarts.iter().filter(|(from, _)| *from <= r.1).count();
            *by_restart.entry(k).or_default() += 1;
        }
    }
    // Restarts that found a committed offset inside a batch (tansu 0.6 then
    // skips the rest of the batch unless the source reads it again).
    let mid_batch: usize = (0..=KILLS)
        .map(|k| {
            std::fs::read_to_string(logs.join(format!("fnaa-{k}.log")))
                .unwrap_or_default()
                .matches("dropping what comes before")
                .count()
        })
        .sum();
    let resumes: Vec<String> = restarts
        .iter()
        .map(|(_, d)| d.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis())))
        .collect();
    eprintln!(
        "kill -9 test: {total} events, {} kills, {} records in the output, {} missing, {duplicates} duplicates (by restart: {by_restart:?}; window {IN_FLIGHT_WINDOW} per kill), {mid_batch} partition(s) resumed inside a batch, resume after each restart: [{}]",
        restarts.len(),
        records.len(),
        missing.len(),
        resumes.join(", ")
    );

    let slow: Vec<(usize, Option<Duration>)> = restarts
        .iter()
        .enumerate()
        .filter(|(_, (_, d))| d.is_none_or(|d| d > RESUME_WITHIN))
        .map(|(i, (_, d))| (i + 1, *d))
        .collect();
    assert!(
        slow.is_empty(),
        "restarts that did not resume within {RESUME_WITHIN:?}: {slow:?}; the log of the last host:\n{}",
        tail(&last_log)
    );
    assert_eq!(restarts.len(), KILLS);
    assert!(
        missing.is_empty(),
        "{} of {total} events never reached the output, e.g. {:?}; the log of the last host:\n{}",
        missing.len(),
        &missing[..missing.len().min(20)],
        tail(&last_log)
    );
    assert_eq!(strangers, 0, "the output holds events nobody produced");
    let over: Vec<(&usize, &usize)> = by_restart
        .iter()
        .filter(|(k, n)| **k == 0 || **n > IN_FLIGHT_WINDOW)
        .collect();
    assert!(
        over.is_empty(),
        "duplicates beyond the in-flight window of {IN_FLIGHT_WINDOW} per kill (restart: count; 0 = before any kill): {over:?}"
    );
}

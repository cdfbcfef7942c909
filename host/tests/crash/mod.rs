//! The kill -9 harness the crash tests share: a pipeline copying one
//! topic (exchange, stream) of a broker to another, run by `fnaa serve`,
//! killed with SIGKILL (by its own pid) at random points while a producer
//! writes a long numbered stream of CloudEvents, and restarted each time.
//!
//! Everything outside the host is a client that depends on nothing we
//! wrote (`mosquitto_pub`/`mosquitto_sub`, Python `pika`, Python
//! `nats-py`), spoken to through pipes:
//!
//! * the producer reads one structured CloudEvent a line on its stdin and
//!   publishes it, waiting for the broker's acknowledgement; it exits 0
//!   once all are acknowledged (stdin closed);
//! * a reader prints one line per message it receives: the event's id, or
//!   the structured CloudEvent itself (its `id` is taken); one that says
//!   `announces_ready` first prints `READY` once subscribed. An input
//!   reader proves the producer published everything, an output reader
//!   sees what the pipeline wrote.
//!
//! [`run`] checks that every restart resumes within [`RESUME_WITHIN`]
//! (from the restart to the first new line of the output reader), that no
//! event is missing from the output and that duplicates stay within the
//! in-flight window of each kill, prints the figures, and fails loudly.
//! `FNAA_CRASH_SEED=<n>` repeats a run (the seed is printed);
//! `FNAA_CRASH_KEEP=1` keeps the run's directory (the host's logs, one per
//! start, and the clients' stderr); `FNAA_CRASH_LOG` is the host's
//! `RUST_LOG` (default `info`).
#![allow(dead_code, clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KILLS: usize = 10;
/// From a restart to the first new output event, at most.
pub const RESUME_WITHIN: Duration = Duration::from_secs(2);
pub const BATCH_SIZE: usize = 100;
pub const QUEUE_BATCHES: usize = 4;
/// What a kill may duplicate at most: the batches in flight at the sink
/// (`queue_batches`), one whose acknowledgement was on its way, one more
/// for slack.
pub const IN_FLIGHT_WINDOW: usize = (QUEUE_BATCHES + 2) * BATCH_SIZE;

pub use support::*;

/// A reader process (see the module documentation).
pub struct Reader {
    pub command: Command,
    pub announces_ready: bool,
}

/// What a reader saw: (when, event id), in the order read.
#[derive(Default)]
pub struct Seen {
    pub records: Vec<(Instant, String)>,
    pub ids: HashSet<String>,
}

/// A running reader.
pub struct Following {
    pub seen: Arc<Mutex<Seen>>,
    _process: Process,
    stderr: PathBuf,
}

impl Following {
    /// Starts `reader` (its stderr into `stderr`), waiting up to 20 s for
    /// its `READY` when it announces one.
    pub fn start(what: &str, mut reader: Reader, stderr: PathBuf) -> Following {
        let mut child = reader
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {what} reader: {e}"));
        let stdout = child.stdout.take().unwrap();
        let process = Process(Some(child));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = seen.clone();
        let announces = reader.announces_ready;
        std::thread::spawn(move || {
            let mut ready = !announces;
            if ready {
                let _ = ready_tx.send(());
            }
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !ready {
                    if line.trim() == "READY" {
                        ready = true;
                        let _ = ready_tx.send(());
                    }
                    continue;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let id = event_id(&line);
                let mut seen = s.lock().unwrap();
                seen.ids.insert(id.clone());
                seen.records.push((Instant::now(), id));
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
            panic!(
                "the {what} reader did not say READY within 20 s; its stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        Following {
            seen,
            _process: process,
            stderr,
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().records.len()
    }

    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().ids.len()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until no new record came for `quiet`; returns the count.
    pub fn settle(&self, quiet: Duration) -> usize {
        let mut last = usize::MAX;
        let mut since = Instant::now();
        loop {
            let count = self.count();
            if count != last {
                last = count;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the record at index `from`; returns when it was read.
    pub fn first_from(&self, from: usize, host: &mut Host, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            host.assert_running();
            if let Some(r) = self.seen.lock().unwrap().records.get(from) {
                return Some(r.0);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

/// What the producer's feeder shares with the test: when to stop, how
/// many events went, when each went.
#[derive(Clone, Default)]
struct Progress {
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
    sent: Arc<Mutex<Vec<Instant>>>,
}

/// Writes numbered events to the producer's stdin at `rate` a second
/// until `stop` is set and at least `min_events` went; closes its stdin
/// and waits for it to exit (all acknowledged); returns how many.
fn produce(
    mut child: Child,
    stdin: ChildStdin,
    rate: usize,
    min_events: usize,
    progress: Progress,
    stderr: PathBuf,
) -> usize {
    let Progress {
        stop,
        produced,
        sent,
    } = progress;
    let mut stdin = std::io::BufWriter::new(stdin);
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let started = Instant::now();
    let mut n = 0;
    while !(stop.load(Ordering::Relaxed) && n >= min_events) {
        for _ in 0..per_tick {
            if let Err(e) = writeln!(stdin, "{}", event(n)) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the producer stopped reading after {n} events ({e}); its stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            n += 1;
        }
        stdin.flush().unwrap();
        sent.lock().unwrap().resize(n, Instant::now());
        produced.store(n, Ordering::Relaxed);
        let due = started + tick * u32::try_from(n / per_tick).unwrap();
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(
                    status.success(),
                    "the producer exited with {status}; its stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
                return n;
            }
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the producer did not finish within 30 s of its last event");
            }
        }
    }
}

/// A crash test of one broker.
pub struct Scenario {
    /// For the report: `mqtt`, `amqp`, `nats`.
    pub broker: &'static str,
    /// TOML added to the host's configuration: the `[brokers]` entries.
    pub brokers_toml: String,
    /// The pipeline's source and sink endpoints, inline TOML tables.
    pub source: String,
    pub sink: String,
    pub producer: Command,
    /// Reads the input (proves the producer's work), started before the
    /// producer.
    pub input_reader: Reader,
    /// Reads the output, started before the host.
    pub output_reader: Reader,
    /// Events a second and at least.
    pub rate: usize,
    pub min_events: usize,
    /// After the producer is done, how long the last host may take to copy
    /// the rest (a NATS redelivery waits for `ack_wait`).
    pub drain: Duration,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    pub events: usize,
    pub output_records: usize,
    pub missing: Vec<usize>,
    pub duplicates: usize,
    /// Duplicates by restart (0: before any kill).
    pub by_restart: BTreeMap<usize, usize>,
    /// Resume time of each restart (None: never, within 15 s).
    pub resumes: Vec<Option<Duration>>,
    /// From an event's handing to the producer to its first copy in the
    /// output, at most; and how many events took over [`LATE`].
    pub max_latency: Duration,
    pub late: usize,
}

/// An event later than this from the producer to the output is late.
pub const LATE: Duration = Duration::from_secs(5);

impl Report {
    /// min/median/max of the resume times, in ms.
    pub fn resume_figures(&self) -> String {
        let mut ms: Vec<u128> = self
            .resumes
            .iter()
            .flatten()
            .map(Duration::as_millis)
            .collect();
        ms.sort_unstable();
        if ms.is_empty() {
            return "none".to_owned();
        }
        format!(
            "min {} / median {} / max {} ms",
            ms[0],
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        )
    }
}

/// Runs `scenario` (see the module documentation) and asserts.
pub fn run(scenario: Scenario) -> Report {
    let Scenario {
        broker,
        brokers_toml,
        source,
        sink,
        producer,
        input_reader,
        output_reader,
        rate,
        min_events,
        drain,
    } = scenario;
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
    eprintln!("kill -9 test ({broker}): seed {seed} (FNAA_CRASH_SEED={seed} repeats this run)");
    let mut random = Random(seed);

    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("FNAA_CRASH_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("kill -9 test ({broker}): keeping {}", dir.path().display());
    }
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let extra = format!(
        r#"
{brokers_toml}

[[pipelines]]
name = "crash-copy"
batch_size = {BATCH_SIZE}
queue_batches = {QUEUE_BATCHES}
metrics_interval_s = 0
source = {source}
sink = {sink}
"#
    );
    let config = write_config(dir.path(), &extra);

    let output = Following::start("output", output_reader, logs.join("output-reader.err"));
    let input = Following::start("input", input_reader, logs.join("input-reader.err"));

    // The first start compiles the connector plugins: not timed.
    let mut host = Host::start(&config, logs.join("fnaa-0.log"));
    host.wait_started(Duration::from_secs(120));

    let progress = Progress::default();
    let Progress {
        stop,
        produced,
        sent,
    } = progress.clone();
    let feeding = {
        let mut producer = producer;
        let stderr = logs.join("producer.err");
        let mut child = producer
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the producer: {e}"));
        let stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || produce(child, stdin, rate, min_events, progress, stderr))
    };
    if output
        .first_from(0, &mut host, Duration::from_secs(60))
        .is_none()
    {
        panic!(
            "the pipeline copied nothing within 60 s of its start (input reader saw {}); the host's log:\n{}\noutput reader's stderr:\n{}",
            input.count(),
            tail(&host.log),
            output.stderr()
        );
    }

    // (output index a restarted host writes first, resume time)
    let mut restarts: Vec<(usize, Option<Duration>)> = Vec::new();
    for k in 1..=KILLS {
        // Every other kill early, while the restarted host catches up.
        std::thread::sleep(if k % 2 == 1 {
            random.millis(20, 400)
        } else {
            random.millis(400, 1500)
        });
        host.kill9();
        let killed_at = produced.load(Ordering::Relaxed);
        // Whatever the dead host wrote has reached the reader.
        let from = output.settle(Duration::from_millis(600));
        std::thread::sleep(random.millis(0, 500));
        let restarted = Instant::now();
        host = Host::start(&config, logs.join(format!("fnaa-{k}.log")));
        let resumed = output
            .first_from(from, &mut host, Duration::from_secs(15))
            .map(|t| t - restarted);
        eprintln!(
            "{broker} kill {k}: killed with {killed_at} events produced; output resumed at record {from} {}",
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while input.distinct() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let input_ids: HashSet<String> = input.seen.lock().unwrap().ids.clone();
    let absent: Vec<usize> = (0..total)
        .filter(|n| !input_ids.contains(&format!("e-{n}")))
        .collect();
    assert!(
        absent.is_empty(),
        "the input does not hold the {total} events produced (the producer or the input reader failed, not the pipeline): {} absent, e.g. {:?}; input reader's stderr:\n{}",
        absent.len(),
        &absent[..absent.len().min(20)],
        input.stderr()
    );

    // The last host copies the rest.
    let deadline = Instant::now() + drain;
    while output.distinct() < total && Instant::now() < deadline {
        host.assert_running();
        std::thread::sleep(Duration::from_millis(50));
    }
    output.settle(Duration::from_millis(600));
    let last_log = host.log.clone();
    drop(host);

    let (records, arrivals): (Vec<String>, Vec<Instant>) = output
        .seen
        .lock()
        .unwrap()
        .records
        .iter()
        .map(|r| (r.1.clone(), r.0))
        .unzip();
    let mut arrived: HashMap<&str, Instant> = HashMap::new();
    for (id, at) in records.iter().zip(&arrivals) {
        arrived.entry(id.as_str()).or_insert(*at);
    }
    let latencies: Vec<Duration> = sent
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .filter_map(|(n, at)| {
            arrived
                .get(format!("e-{n}").as_str())
                .map(|a| a.saturating_duration_since(*at))
        })
        .collect();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for id in &records {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    let missing: Vec<usize> = (0..total)
        .filter(|n| !copies.contains_key(format!("e-{n}").as_str()))
        .collect();
    let strangers: Vec<&&str> = copies
        .keys()
        .filter(|id| !input_ids.contains(**id))
        .collect();
    let duplicates = records.len() - copies.len();
    // Duplicates by restart: records read after restart k's first output
    // whose event had been read before.
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut by_restart: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, id) in records.iter().enumerate() {
        if first.contains_key(id.as_str()) {
            let k = restarts.iter().filter(|(from, _)| *from <= i).count();
            *by_restart.entry(k).or_default() += 1;
        } else {
            first.insert(id.as_str(), i);
        }
    }
    let report = Report {
        events: total,
        output_records: records.len(),
        missing,
        duplicates,
        by_restart,
        resumes: restarts.iter().map(|r| r.1).collect(),
        max_latency: latencies.iter().max().copied().unwrap_or_default(),
        late: latencies.iter().filter(|l| **l > LATE).count(),
    };
    let resumes: Vec<String> = report
        .resumes
        .iter()
        .map(|d| d.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis())))
        .collect();
    eprintln!(
        "kill -9 test ({broker}): {total} events, {} kills, {} records in the output, {} missing, {duplicates} duplicates (by restart: {:?}; window {IN_FLIGHT_WINDOW} per kill), resume after each restart: [{}] ({}), latency at most {} ms, {} event(s) later than {LATE:?}",
        restarts.len(),
        records.len(),
        report.missing.len(),
        report.by_restart,
        resumes.join(", "),
        report.resume_figures(),
        report.max_latency.as_millis(),
        report.late
    );

    let slow: Vec<(usize, Option<Duration>)> = report
        .resumes
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_none_or(|d| d > RESUME_WITHIN))
        .map(|(i, d)| (i + 1, *d))
        .collect();
    assert!(
        slow.is_empty(),
        "{broker}: restarts that did not resume within {RESUME_WITHIN:?}: {slow:?}; the log of the last host:\n{}",
        tail(&last_log)
    );
    assert_eq!(restarts.len(), KILLS);
    assert!(
        report.missing.is_empty(),
        "{broker}: {} of {total} events never reached the output, e.g. {:?}; the log of the last host:\n{}",
        report.missing.len(),
        &report.missing[..report.missing.len().min(20)],
        tail(&last_log)
    );
    assert!(
        strangers.is_empty(),
        "{broker}: the output holds events nobody produced: {:?}",
        &strangers[..strangers.len().min(10)]
    );
    let over: Vec<(&usize, &usize)> = report
        .by_restart
        .iter()
        .filter(|(k, n)| **k == 0 || **n > IN_FLIGHT_WINDOW)
        .collect();
    assert!(
        over.is_empty(),
        "{broker}: duplicates beyond the in-flight window of {IN_FLIGHT_WINDOW} per kill (restart: count; 0 = before any kill): {over:?}"
    );
    report
}

/// The host's configuration in `dir`: its own ports, plus `extra`.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("fnaa.toml");
    let config = format!(
        r#"
[runtime]
cache_dir = "{dir}/cache"

[fnap]
listen = "127.0.0.1:{fnap}"
hostname = "localhost"

[grpc]
listen = "127.0.0.1:0"

[store]
path = "{dir}/control.redb"

[dns.registry]
type = "embedded"
listen = "127.0.0.1:{dns}"

[brokers.embedded_mqtt]
listen = "127.0.0.1:{mqtt}"

{extra}
"#,
        dir = dir.display(),
        fnap = free_port(),
        dns = free_port(),
        mqtt = free_port(),
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

//! `fnaa plugin check` and `fnaa plugin run`, through the real binary, on
//! good and bad input.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn fnaa(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fnaa"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fnaa runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("fnaa exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EVENTS: &str = r#"{"specversion":"1.0","id":"1","source":"/kytos","type":"kytos/topology.link_up","datacontenttype":"application/json","data":{"link":"l1"}}
{"specversion":"1.0","id":"2","source":"/kytos","type":"kytos/of_core.messages.in"}

{"specversion":"1.0","id":"3","source":"/kytos","type":"kytos/topology.switch.enabled","subject":"s3"}
"#;

#[test]
fn check_describes_a_builtin_processor_and_its_imports() {
    let out = fnaa(&["plugin", "check", "signal"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("world:       fnaa:plugin/processor@0.1.0"),
        "{stdout}"
    );
    assert!(stdout.contains("stateless:   yes"), "{stdout}");
    assert!(stdout.contains("fnaa:plugin/types@0.1.0"), "{stdout}");
    // Only what it calls: signal neither logs nor touches the filesystem.
    assert!(!stdout.contains("wasi:filesystem"), "{stdout}");
}

#[test]
fn check_reads_component_files() {
    let probe = fnaa_plugins::find("probe").expect("probe built");
    let out = fnaa(&["plugin", "check", probe.path], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("fnaa:plugin/state@0.1.0"),
        "the probe uses state: {stdout}"
    );
    assert!(stdout.contains("stateless:   no"), "{stdout}");
}

#[test]
fn check_rejects_what_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let out = fnaa(&["plugin", "check", junk.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );

    let out = fnaa(&["plugin", "check", "no-such-plugin"], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-plugin") && stderr.contains("built-in: "),
        "{stderr}"
    );
}

#[test]
fn run_filters_events_offline() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, EVENTS).unwrap();
    let out = fnaa(
        &[
            "plugin",
            "run",
            "signal",
            "--config",
            "types=kytos/topology.*",
            "--input",
            input.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["port"], "out");
    assert_eq!(lines[0]["event"]["id"], "1");
    assert_eq!(lines[0]["event"]["data"], serde_json::json!({"link": "l1"}));
    assert_eq!(lines[1]["event"]["subject"], "s3");
}

#[test]
fn run_reads_stdin_and_reports_bad_lines_with_their_numbers() {
    let input = "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}\n\
                 not json at all\n\
                 {\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}\n\
                 {\"specversion\":\"1.0\",\"id\":\"4\",\"source\":\"/s\",\"type\":\"t\"}\n";
    let out = fnaa(
        &["plugin", "run", "bridge", "--input", "-", "--batch", "1"],
        Some(input),
    );
    assert_eq!(out.status.code(), Some(1), "bad lines make the run fail");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("stdin:2: not a CloudEvent"), "{stderr}");
    assert!(
        stderr.contains("stdin:3: not a CloudEvent: required attribute `id` is missing"),
        "{stderr}"
    );
    // Nothing already accepted is lost: both good events come out.
    let ids: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["1", "4"]);
}

#[test]
fn run_reports_plugin_failures_per_batch_and_goes_on() {
    let input = "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"datacontenttype\":\"application/json\",\"data\":{\"a\":1}}\n\
                 {\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\",\"datacontenttype\":\"text/plain\",\"data\":\"plain\"}\n\
                 {\"specversion\":\"1.0\",\"id\":\"3\",\"source\":\"/s\",\"type\":\"t\",\"datacontenttype\":\"application/json\",\"data\":{\"a\":3}}\n";
    let out = fnaa(
        &[
            "plugin", "run", "signal", "-c", "pick=/a", "--input", "-", "--batch", "1",
        ],
        Some(input),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("stdin:2-2:") && stderr.contains("event 0 of the batch rejected"),
        "{stderr}"
    );
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "batches 1 and 3 still processed"
    );
}

#[test]
fn run_rejects_bad_configuration_and_arguments() {
    let out = fnaa(
        &[
            "plugin",
            "run",
            "bridge",
            "--config",
            "nonsense=1",
            "--input",
            "-",
        ],
        Some(""),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown configuration key `nonsense`"),
        "{stderr}"
    );

    let out = fnaa(
        &[
            "plugin",
            "run",
            "bridge",
            "--config",
            "no-equals-sign",
            "--input",
            "-",
        ],
        Some(""),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not KEY=VALUE"),
        "{}",
        text(&out.stderr)
    );

    let out = fnaa(
        &["plugin", "run", "bridge", "--input", "/no/such/file.jsonl"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot open /no/such/file.jsonl"),
        "{}",
        text(&out.stderr)
    );
}

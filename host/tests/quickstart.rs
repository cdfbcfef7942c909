//! The README's quickstart, run as written: the host block is started as a
//! user would in one terminal, then every `$ ` command of the session
//! block runs in a shell with `fnaa` and `flow` on the PATH, and its output
//! must match the lines the README shows (`...` alone skips lines, inside
//! a line it stands for any text). HOME is a fresh directory, so this is a
//! first start. The quickstart uses the default ports, which must be free.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The code block that follows `marker` in the README.
fn block<'a>(readme: &'a str, marker: &str) -> &'a str {
    let after = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("README.md has no `{marker}`"))
        .1;
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").unwrap()]
}

/// One `$ command` of the session with the output it must print.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn steps(session: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in session.lines() {
        match line.strip_prefix("$ ") {
            Some(command) => steps.push(Step {
                command: command.to_owned(),
                expected: Vec::new(),
            }),
            None => steps
                .last_mut()
                .expect("the session block starts with a command")
                .expected
                .push(line.to_owned()),
        }
    }
    steps
}

/// Whether `line` matches `pattern`, whose `...` stand for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let (first, rest) = parts.split_first().unwrap();
    let Some(mut remaining) = line.strip_prefix(first) else {
        return false;
    };
    for (index, part) in rest.iter().enumerate() {
        if index == rest.len() - 1 {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.is_empty()
}

/// Whether the output lines match the expected ones (`...` alone: any
/// number of lines).
fn output_matches(expected: &[String], output: &[&str]) -> bool {
    match expected.split_first() {
        None => output.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=output.len()).any(|skip| output_matches(rest, &output[skip..]))
        }
        Some((first, rest)) => match output.split_first() {
            Some((line, others)) => line_matches(first, line) && output_matches(rest, others),
            None => false,
        },
    }
}

#[test]
fn the_matcher_fails_on_a_difference() {
    let expected = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    assert!(output_matches(&expected(&["a ... c"]), &["a b c"]));
    assert!(!output_matches(&expected(&["a ... c"]), &["a b d"]));
    assert!(output_matches(
        &expected(&["x", "...", "z"]),
        &["x", "1", "2", "z"]
    ));
    assert!(!output_matches(&expected(&["x", "z"]), &["x", "y", "z"]));
    assert!(!output_matches(&expected(&[]), &["unexpected"]));
}

/// The quickstart's ports: FNAP, embedded MQTT, DNS, gRPC.
const PORTS: [u16; 4] = [61000, 11883, 5300, 50051];

/// The host started by the README's host block, stopped (SIGTERM, then
/// SIGKILL) when the test ends.
struct Terminal {
    shell: Child,
    log: PathBuf,
}

impl Terminal {
    /// The `fnaa` process the shell runs.
    fn host_pid(&self) -> Option<String> {
        let pid = self.shell.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()
            .map(str::to_owned)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(pid) = self.host_pid() {
            let _ = Command::new("kill").arg(&pid).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

fn shell(home: &Path, path: &str, cwd: &Path, command: &str) -> Command {
    let mut shell = Command::new("bash");
    shell
        .args(["-c", command])
        .current_dir(cwd)
        .env("HOME", home)
        .env("PATH", path)
        .env_remove("FNAA_ADMIN_PASSWORD")
        .env_remove("FLOW_CONFIG")
        .env_remove("FLOW_SERVER")
        .env_remove("FLOW_USER")
        .env_remove("FLOW_PASSWORD");
    shell
}

#[test]
fn the_readme_quickstart_works_as_written() {
    for port in PORTS {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && UdpSocket::bind(("127.0.0.1", port)).is_ok(),
            "the quickstart needs 127.0.0.1:{port}, which is in use"
        );
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_fnaa")).parent().unwrap();
    assert!(bin.join("flow").is_file(), "no flow binary next to fnaa");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // Terminal 1: the host, on its first start.
    let host_command = block(&readme, "<!-- quickstart:host -->").trim();
    let log = home.path().join("terminal-1.log");
    let out = std::fs::File::create(&log).unwrap();
    let terminal = Terminal {
        shell: shell(home.path(), &path, home.path(), host_command)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while !terminal.log().contains("fnaa host started") {
        assert!(
            Instant::now() < deadline,
            "the host did not start:\n{}",
            terminal.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = terminal.log();
    assert!(
        !started.contains("ERROR"),
        "a first start logs no error:\n{started}"
    );
    assert!(
        started.contains("fnap=Some(127.0.0.1:61000)"),
        "FNAP listens on loopback by default:\n{started}"
    );
    assert!(
        started.contains("first start: created the account `admin`")
            && started.contains("flow login --server 127.0.0.1:61000 --user admin"),
        "the first start says how to log in:\n{started}"
    );
    let password_file = home.path().join("fnaa/admin-password");
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the password is readable only by its owner"
    );
    let mut password = String::new();
    std::fs::File::open(&password_file)
        .unwrap()
        .read_to_string(&mut password)
        .unwrap();
    assert!(
        !started.contains(password.trim()),
        "the password is never logged"
    );

    // Terminal 2: the session, command by command.
    let mut cwd = home.path().to_owned();
    for step in steps(block(&readme, "<!-- quickstart:session -->")) {
        if let Some(dir) = step.command.strip_prefix("cd ") {
            let dir = dir.replace('~', &home.path().display().to_string());
            cwd = cwd.join(dir);
            assert!(cwd.is_dir(), "`{}`: no such directory", step.command);
            continue;
        }
        // The processor's counts follow delivery by a moment: a describe
        // may be asked again for a few seconds.
        let patience = if step.command.starts_with("flow describe") {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + patience;
        loop {
            let output = shell(home.path(), &path, &cwd, &step.command)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let lines: Vec<&str> = stdout.lines().collect();
            if output.status.success() && output_matches(&step.expected, &lines) {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{}` exited with {} and printed:\n{stdout}\nstderr:\n{}\nexpected:\n{}\nhost log:\n{}",
                    step.command,
                    output.status,
                    String::from_utf8_lossy(&output.stderr),
                    step.expected.join("\n"),
                    terminal.log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let agents = home.path().join(".flow.yml");
    let mode = std::fs::metadata(&agents).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "flow login keeps the password private");
    assert!(
        !terminal.log().contains("ERROR"),
        "the quickstart logs no error:\n{}",
        terminal.log()
    );
}

//! A real Kytos 2021.1 controller for the tests: `kytosd` from the
//! virtualenv `.ci/test` makes (`FNAA_KYTOS_VENV`, default
//! `/var/cache/fnaa-kytos-venv`), started through
//! `examples/kytos/kytosd-compat.py` with our `fnaa/listen_events` NApp and
//! the tests' `fnaa_test/topology_emitter` NApp installed as Kytos
//! installs NApps, on free ports, killed when the test ends.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VENV_DEFAULT: &str = "/var/cache/fnaa-kytos-venv";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtualenv's python, or a panic that says how to make it.
pub fn python() -> PathBuf {
    let venv = std::env::var("FNAA_KYTOS_VENV").unwrap_or_else(|_| VENV_DEFAULT.into());
    let python = Path::new(&venv).join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import kytos.core"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Kytos 2021.1 is required in the virtualenv {venv}: python3 -m venv {venv} && {venv}/bin/pip install kytos==2021.1 (or set FNAA_KYTOS_VENV)"
    );
    python
}

/// A running controller.
pub struct Kytos {
    child: Child,
    pub api_port: u16,
    log: PathBuf,
}

impl Drop for Kytos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Installs NApp `user/name` from `source` into `napps` as Kytos does:
/// the code in `.installed/<user>/<name>`, enabled by a symlink
/// `<user>/<name>`.
fn install_napp(napps: &Path, user: &str, name: &str, source: &Path) {
    let installed = napps.join(".installed").join(user);
    copy_dir(source, &installed.join(name));
    std::fs::write(installed.join("__init__.py"), "").unwrap();
    let enabled = napps.join(user);
    std::fs::create_dir_all(&enabled).unwrap();
    std::fs::write(enabled.join("__init__.py"), "").unwrap();
    std::os::unix::fs::symlink(
        Path::new("../.installed").join(user).join(name),
        enabled.join(name),
    )
    .unwrap();
}

impl Kytos {
    /// Starts a controller in `dir` whose listen_events NApp posts to
    /// `url` with the token in `token_file`; `env` adds `FNAA_*` settings.
    /// Waits (up to 90 s) until both NApps are loaded.
    pub fn start(dir: &Path, url: &str, token_file: &Path, env: &[(&str, &str)]) -> Kytos {
        let python = python();
        let root = dir.join("kytos");
        let napps = root.join("napps");
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::create_dir_all(&napps).unwrap();
        std::fs::write(napps.join("__init__.py"), "").unwrap();
        let examples = repository().join("examples/kytos");
        install_napp(
            &napps,
            "fnaa",
            "listen_events",
            &examples.join("listen_events"),
        );
        install_napp(
            &napps,
            "fnaa_test",
            "topology_emitter",
            &examples.join("tests/topology_emitter"),
        );
        let (of_port, api_port) = (crate::common::free_port(), crate::common::free_port());
        let conf = root.join("kytos.conf");
        std::fs::write(
            &conf,
            format!(
                "[daemon]\nworkdir = {root}/run\npidfile = {root}/run/kytosd.pid\ndaemon = False\n\
                 debug = False\nlogging = {root}/logging.ini\nlisten = 127.0.0.1\nport = {of_port}\n\
                 protocol_name =\napi_port = {api_port}\nnapps = {napps}\n\
                 installed_napps = {napps}/.installed\nnapps_repositories = []\n\
                 napps_pre_installed = []\nvlan_pool = {{}}\njwt_secret = test\n\
                 token_expiration_minutes = 180\n",
                root = root.display(),
                napps = napps.display(),
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("logging.ini"),
            "[formatters]\nkeys: console\n[handlers]\nkeys: console\n[loggers]\nkeys: root\n\
             [formatter_console]\nformat: %(asctime)s %(levelname)s [%(name)s] %(message)s\n\
             [handler_console]\nclass: StreamHandler\nargs: [sys.stdout]\nformatter: console\n\
             [logger_root]\nlevel: INFO\nhandlers: console\n",
        )
        .unwrap();
        let log = root.join("kytos.log");
        let child = Command::new(python)
            .arg(examples.join("kytosd-compat.py"))
            .args(["-c", conf.to_str().unwrap()])
            .env("FNAA_URL", url)
            .env("FNAA_TOKEN_FILE", token_file)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(root.join("kytos.err")).unwrap())
            .spawn()
            .unwrap();
        let kytos = Kytos {
            child,
            api_port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok((200, _)) =
                kytos.request("GET", "/api/fnaa_test/topology_emitter/v1/ready", "")
            {
                return kytos;
            }
            assert!(
                Instant::now() < deadline,
                "Kytos did not load the NApps within 90 s:\n{}",
                kytos.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// One HTTP/1.1 request to the controller's REST API.
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.api_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, answer))
    }

    /// Has the emitter NApp put `specs` (see its `main.py`) on the
    /// controller's app buffer, in order.
    pub fn emit(&self, specs: &serde_json::Value) {
        let (status, answer) = self
            .request(
                "POST",
                "/api/fnaa_test/topology_emitter/v1/emit",
                &specs.to_string(),
            )
            .unwrap();
        assert_eq!(status, 200, "emit: {answer}\n{}", self.log());
    }

    /// Emits one `name` event per number of `seqs`, with content
    /// `{"seq": n}` (the readers count them).
    pub fn emit_numbered(&self, name: &str, seqs: std::ops::Range<u64>) {
        let specs: Vec<serde_json::Value> = seqs
            .map(|seq| serde_json::json!({ "name": name, "content": { "seq": seq } }))
            .collect();
        self.emit(&serde_json::Value::Array(specs));
    }

    /// What the controller logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

//! Test support: a real BIND9 `named` in a temporary directory, and the real
//! `dig`. Missing tools fail the tests loudly, naming the Debian package.

#![allow(dead_code)] // Each test file uses a different part.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Key name of the TSIG key generated for each named.
pub const TSIG_KEY_NAME: &str = "fnaa-update";

/// How long named may take to answer after start.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Finds `tool` in PATH or the sbin directories; panics with what to install.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(extra)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not installed, and these tests need the real one: \
                 install the Debian package `{package}` (apt-get install -y bind9 bind9-dnsutils)"
            )
        })
}

/// A loopback port free for both TCP and UDP right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port on 127.0.0.1");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP")
}

/// A zone served by the test named.
pub struct Zone {
    /// Apex, without the trailing dot.
    pub origin: String,
    /// Records after the SOA and NS (master-file lines, relative or absolute).
    pub records: String,
    /// `update-policy` rules, or `None` for a static zone.
    pub update_policy: Option<String>,
}

impl Zone {
    /// A zone the test key may update with the record types of the FNS,
    /// the policy examples/bind9 recommends.
    pub fn dynamic(origin: &str) -> Zone {
        Zone {
            origin: origin.to_owned(),
            records: String::new(),
            update_policy: Some(format!("grant {TSIG_KEY_NAME} zonesub PTR SRV TXT A AAAA;")),
        }
    }

    /// A zone nobody may update.
    pub fn fixed(origin: &str, records: &str) -> Zone {
        Zone {
            origin: origin.to_owned(),
            records: records.to_owned(),
            update_policy: None,
        }
    }
}

/// A running `named`, killed when dropped. Every zone is DNSSEC-signed by
/// named itself (`dnssec-policy default; inline-signing yes;`).
pub struct Named {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it answers (UDP and TCP).
    pub address: SocketAddr,
    /// The TSIG key file written by `tsig-keygen`.
    pub key_file: PathBuf,
}

impl Named {
    /// Writes named.conf, generates the TSIG key, starts named and waits
    /// until every zone answers its SOA.
    pub fn start(zones: &[Zone]) -> Named {
        let keygen = require_tool("tsig-keygen", "bind9");
        require_tool("dig", "bind9-dnsutils");

        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path();
        std::fs::create_dir(root.join("keys")).expect("keys directory");
        let key_file = root.join(format!("{TSIG_KEY_NAME}.key"));
        let key = Command::new(&keygen)
            .args(["-a", "hmac-sha256", TSIG_KEY_NAME])
            .output()
            .expect("run tsig-keygen");
        assert!(key.status.success(), "tsig-keygen failed: {key:?}");
        std::fs::write(&key_file, &key.stdout).expect("write the key file");

        let port = free_port();
        let mut conf = format!(
            "include \"{}\";\n{}",
            key_file.display(),
            Named::options(root, port)
        );
        for zone in zones {
            let file = format!("{}.db", zone.origin);
            std::fs::write(
                root.join(&file),
                format!(
                    "$ORIGIN {origin}.\n$TTL 300\n\
                     @ IN SOA ns1.{origin}. hostmaster.{origin}. 1 3600 600 604800 60\n\
                     @ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n{records}\n",
                    origin = zone.origin,
                    records = zone.records,
                ),
            )
            .expect("write the zone file");
            let update = zone
                .update_policy
                .as_deref()
                .map(|policy| format!("    update-policy {{ {policy} }};\n"))
                .unwrap_or_default();
            let _ = write!(
                conf,
                "zone \"{origin}\" {{\n    type primary;\n    file \"{file}\";\n    \
                 key-directory \"keys\";\n    dnssec-policy default;\n    inline-signing yes;\n{update}}};\n",
                origin = zone.origin,
            );
        }
        let conf_path = root.join("named.conf");
        std::fs::write(&conf_path, conf).expect("write named.conf");
        let origins: Vec<&str> = zones.iter().map(|zone| zone.origin.as_str()).collect();
        Named::launch(dir, &conf_path, port, key_file, &origins)
    }

    /// The `options` block of a test named listening on `port`, for
    /// configurations written by the caller.
    pub fn options(dir: &Path, port: u16) -> String {
        format!(
            r#"options {{
    directory "{dir}";
    pid-file "{dir}/named.pid";
    session-keyfile "{dir}/session.key";
    managed-keys-directory "{dir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
}};
controls {{ }};
"#,
            dir = dir.display(),
        )
    }

    /// Starts named on `conf` (which listens on `port`) and waits until
    /// each of `origins` answers its SOA.
    pub fn launch(
        dir: tempfile::TempDir,
        conf_path: &Path,
        port: u16,
        key_file: PathBuf,
        origins: &[&str],
    ) -> Named {
        let named = require_tool("named", "bind9");
        let root = dir.path();
        let log = std::fs::File::create(root.join("named.log")).expect("create the log");
        let child = Command::new(&named)
            // -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker
            // (the tests run several named at once on a small machine).
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        let mut server = Named {
            child,
            dir,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            key_file,
        };
        for origin in origins {
            server.wait_for_soa(origin);
        }
        server
    }

    fn wait_for_soa(&mut self, origin: &str) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("named exited ({status}) at start:\n{}", self.log());
            }
            let answer = dig(self.address, origin, "SOA", &[]);
            if answer.iter().any(|record| record.record_type == "SOA") {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "named does not answer for {origin} after {STARTUP_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log of named so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// The directory of the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One record of dig's answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigRecord {
    pub name: String,
    pub ttl: u32,
    pub record_type: String,
    pub data: String,
}

/// Runs the real `dig @server -p port <name> <type> +noall +answer` and
/// parses its answer section.
pub fn dig(server: SocketAddr, name: &str, record_type: &str, extra: &[&str]) -> Vec<DigRecord> {
    let dig = require_tool("dig", "bind9-dnsutils");
    let output = Command::new(dig)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+noall", "+answer", "+time=2", "+tries=1", "+norecurse"])
        .args(extra)
        .args([name, record_type])
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.to_owned();
            let ttl = fields.next()?.parse().ok()?;
            let _class = fields.next()?;
            let record_type = fields.next()?.to_owned();
            let data = fields.collect::<Vec<_>>().join(" ");
            Some(DigRecord {
                name,
                ttl,
                record_type,
                data,
            })
        })
        .collect()
}

/// The data of the records of `record_type` in dig's answer.
pub fn dig_data(server: SocketAddr, name: &str, record_type: &str) -> Vec<String> {
    dig(server, name, record_type, &[])
        .into_iter()
        .filter(|record| record.record_type == record_type)
        .map(|record| record.data)
        .collect()
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The thesis's Annex B records, as lines of the zone `syndeno.com`.
pub const ANNEX_B_RECORDS: &str = "\
notifications.calendar.people 21600 IN PTR _flow._tcp.notifications.calendar.people.syndeno.com.
_flow._tcp.notifications.calendar.people 875 IN SRV 30 30 65432 fnaa.syndeno.com.
_flow._tcp.notifications.calendar.people 875 IN TXT \"tls\"
_queue._flow._tcp.notifications.calendar.people 875 IN SRV 30 30 9092 kafka.syndeno.com.
_queue._flow._tcp.notifications.calendar.people 875 IN TXT \"broker-type=kafka tls\"
fnaa 21600 IN A 208.68.163.200
kafka 21600 IN A 208.68.163.218
";

//! End to end through the binaries: `fnaa serve` registers the DNS records
//! of each flow it creates in its embedded authoritative server, `dig` sees
//! them, `flow describe flow://...` finds the FNAA through DNS alone, and
//! deleting the flow withdraws the records.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Host, TestHost, add_user, free_ports, test_host, write_named_config};

fn dig(dns_port: u16, name: &str, record: &str) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &dns_port.to_string(),
            "+short",
            "+time=2",
            "+tries=2",
            name,
            record,
        ])
        .output()
        .expect("`dig` runs (install Debian's bind9-dnsutils)");
    assert!(
        out.status.success(),
        "dig failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn flows_created_over_fnap_are_published_and_resolved_through_dns() {
    let TestHost {
        dir,
        config,
        fnap_port,
        dns_port,
        host,
        ..
    } = test_host("", "flows.unix.ar");
    let mut session = host.session("test", "test");
    session.ok("CREATE FLOW time.flows.unix.ar");

    // Annex B layout, as an outsider's `dig` sees it.
    assert_eq!(
        dig(dns_port, "time.flows.unix.ar", "PTR"),
        "_flow._tcp.time.flows.unix.ar."
    );
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        format!("0 0 {fnap_port} localhost.")
    );
    assert!(dig(dns_port, "_queue._flow._tcp.time.flows.unix.ar", "TXT").contains("broker-type="));

    // The `flow` CLI finds the FNAA through DNS only: its agent has no address.
    let agents = dir.path().join("flow.yml");
    std::fs::write(
        &agents,
        "agents:\n  - name: fnaa-unix\n    fqdn: fnaa.unix.ar\n    username: test\n    password: test\n    prefix: unix.ar-\nnamespaces:\n  - name: flows.unix.ar\n    agent: fnaa-unix\n",
    )
    .unwrap();
    let described = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args([
            "--config",
            agents.to_str().unwrap(),
            "--nameserver",
            &format!("127.0.0.1:{dns_port}"),
            "-d",
            "describe",
            "flow",
            "flow://time.flows.unix.ar",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&described.stdout),
        String::from_utf8_lossy(&described.stderr),
    );
    assert!(
        described.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("flow=time.flows.unix.ar"), "{stdout}");
    assert!(
        stderr.contains(&format!("FNAA resolved to localhost:{fnap_port}")),
        "{stderr}"
    );

    // A restarted host publishes its flows again (the embedded zone lives in memory).
    drop(session);
    drop(host);
    let host = Host::start(dir.path(), &config, fnap_port);
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        format!("0 0 {fnap_port} localhost.")
    );
    let mut session = host.session("test", "test");

    session.ok("DELETE FLOW time.flows.unix.ar");
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        "",
        "records withdrawn"
    );
}

/// The agents file of the thesis (7.3) for `fnaa.unix.ar`, without any
/// address: everything comes from DNS.
fn agents_file(dir: &std::path::Path) -> std::path::PathBuf {
    let agents = dir.join("flow.yml");
    std::fs::write(
        &agents,
        "agents:\n  - name: fnaa-unix\n    fqdn: fnaa.unix.ar\n    username: test\n    password: test\nnamespaces:\n  - name: flows.unix.ar\n    agent: fnaa-unix\n",
    )
    .unwrap();
    agents
}

fn flow_cli(agents: &std::path::Path, dns_port: u16, args: &[&str]) -> std::process::Output {
    let nameserver = format!("127.0.0.1:{dns_port}");
    let mut all = vec![
        "--config",
        agents.to_str().unwrap(),
        "--nameserver",
        &nameserver,
        "-d",
    ];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(all)
        .output()
        .unwrap()
}

/// docs/fnap.md 2 as a new user meets it: the host's name is in no hosts
/// file; `fnaa serve` publishes its A record in the zone it serves, and
/// `flow` resolves the SRV target through the nameserver it was given
/// (thesis 7.4.1: "Resolving A for fnaa.unix.ar. using server ...").
#[test]
fn the_flow_cli_finds_a_flow_and_its_host_through_dns_alone() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(
        !hosts.contains("unix.ar"),
        "this test needs fnaa.unix.ar absent from /etc/hosts"
    );
    let dir = tempfile::tempdir().unwrap();
    let [fnap_port, dns_port, mqtt_port] = free_ports();
    let config = write_named_config(
        dir.path(),
        fnap_port,
        dns_port,
        mqtt_port,
        "fnaa.unix.ar",
        &["unix.ar"],
        "",
    );
    add_user(&config, "test", "test", "flows.unix.ar");
    let host = Host::start(dir.path(), &config, fnap_port);
    // The FNAP listener's address, published at start.
    assert_eq!(dig(dns_port, "fnaa.unix.ar", "A"), "127.0.0.1");

    let mut session = host.session("test", "test");
    session.ok("CREATE FLOW time.flows.unix.ar");
    drop(session);
    // The records a client built from docs/fnap.md 2 looks for: the flow's
    // (annex B) and the namespace's (DNS-SD).
    let target = format!("0 0 {fnap_port} fnaa.unix.ar.");
    assert_eq!(
        dig(dns_port, "_flow._tcp.time.flows.unix.ar", "SRV"),
        target
    );
    assert_eq!(
        dig(dns_port, "_fnaa._tcp.flows.unix.ar", "PTR"),
        "fnaa._fnaa._tcp.flows.unix.ar."
    );
    assert_eq!(
        dig(dns_port, "fnaa._fnaa._tcp.flows.unix.ar", "SRV"),
        target
    );

    let agents = agents_file(dir.path());
    let described = flow_cli(
        &agents,
        dns_port,
        &["describe", "flow", "time.flows.unix.ar"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&described.stdout),
        String::from_utf8_lossy(&described.stderr),
    );
    assert!(
        described.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nhost log:\n{}",
        host.log()
    );
    assert!(stdout.contains("flow=time.flows.unix.ar"), "{stdout}");
    for trace in [
        format!("FNAA resolved to fnaa.unix.ar:{fnap_port}"),
        format!("Resolving A for fnaa.unix.ar. using server 127.0.0.1:{dns_port}"),
        format!("Resolved A to 127.0.0.1 for fnaa.unix.ar. using server 127.0.0.1:{dns_port}"),
    ] {
        assert!(stderr.contains(&trace), "{trace} in:\n{stderr}");
    }
    assert!(!stderr.contains("system resolver"), "{stderr}");

    // By namespace only (DNS-SD), as for commands that name no flow.
    let listed = flow_cli(&agents, dns_port, &["list", "flows", "flows.unix.ar"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "time.flows.unix.ar"
    );
}

/// An SRV target that no DNS server knows: the error says which server
/// was asked, and the system resolver was tried too.
#[test]
fn an_unresolvable_srv_target_names_the_nameserver() {
    let dir = tempfile::tempdir().unwrap();
    let [fnap_port, dns_port, mqtt_port] = free_ports();
    // The host name lies outside the zones served: no A record for it.
    let config = write_named_config(
        dir.path(),
        fnap_port,
        dns_port,
        mqtt_port,
        "fnaa.nowhere.invalid",
        &["unix.ar"],
        "",
    );
    add_user(&config, "test", "test", "flows.unix.ar");
    let host = Host::start(dir.path(), &config, fnap_port);
    host.session("test", "test")
        .ok("CREATE FLOW time.flows.unix.ar");
    let described = flow_cli(
        &agents_file(dir.path()),
        dns_port,
        &["describe", "flow", "time.flows.unix.ar"],
    );
    let stderr = String::from_utf8_lossy(&described.stderr);
    assert_eq!(described.status.code(), Some(68), "{stderr}");
    assert!(
        stderr.contains("cannot resolve fnaa.nowhere.invalid")
            && stderr.contains(&format!("127.0.0.1:{dns_port}"))
            && stderr.contains("system resolver"),
        "{stderr}"
    );
}

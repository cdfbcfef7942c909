//! End to end through the binaries: `fnaa serve` registers the DNS records
//! of each flow it creates in its embedded authoritative server, `dig` sees
//! them, `flow describe flow://...` finds the FNAA through DNS alone, and
//! deleting the flow withdraws the records.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Host, TestHost, test_host};

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

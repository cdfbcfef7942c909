//! The example configuration parses, and unknown fields are named.
#![allow(clippy::unwrap_used)]

use fnaa_control::config::ControlConfig;

#[test]
fn example_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/fnap.toml"
    ))
    .unwrap();
    let config: ControlConfig = toml::from_str(&text).unwrap();
    assert_eq!(config.fnap.hostname, "fnaa.unix.ar");
    assert!(config.fnap.tls.is_some());
    assert!(
        !config.fnap.plaintext_auth_allowed(),
        "PLAIN needs TLS once TLS is configured"
    );
    assert_eq!(config.store.scram_iterations, 4096);
}

#[test]
fn empty_is_default() {
    let config: ControlConfig = toml::from_str("").unwrap();
    assert_eq!(config.fnap.max_line_length, 4096);
    assert!(config.fnap.plaintext_auth_allowed());
}

#[test]
fn unknown_fields_are_named() {
    let error = toml::from_str::<ControlConfig>("[fnap]\nmax_conections = 5\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("max_conections"), "{error}");
    let error = toml::from_str::<ControlConfig>("[store]\npath = \"x\"\nbackend = \"pg\"\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("backend"), "{error}");
}

#[test]
fn grpc_tls_section() {
    let config: ControlConfig = toml::from_str(
        "[grpc.tls]\ncertificate = \"/etc/fnaa/a.crt\"\nprivate_key = \"/etc/fnaa/a.key\"\n",
    )
    .unwrap();
    let tls = config.grpc.tls.unwrap();
    assert_eq!(tls.certificate, std::path::Path::new("/etc/fnaa/a.crt"));
    assert_eq!(tls.private_key, std::path::Path::new("/etc/fnaa/a.key"));
    assert!(ControlConfig::default().grpc.tls.is_none());
    let error = toml::from_str::<ControlConfig>(
        "[grpc.tls]\ncertificate = \"a\"\nprivate_key = \"b\"\nca = \"c\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("ca"), "{error}");
}

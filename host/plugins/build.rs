//! Builds every crate of the `plugins/` workspace for `wasm32-wasip2` and
//! embeds the resulting components, so that the `fnaa` binary carries its
//! standard processors and connectors, and tests get them without a separate
//! step.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: keep the wasm build in one
    // place per target dir, shared by every profile, so dev, test and bench
    // builds do not compile the plugins three times.
    let target_root = out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.clone());
    let wasm_target = target_root.join("wasm-plugins");

    for dir in ["plugins", "sdk", "wit", "examples"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    ensure_wasm_target();
    let mut consts = String::new();
    let mut all = Vec::new();
    for manifest in [
        root.join("plugins/Cargo.toml"),
        root.join("examples/processor-template/Cargo.toml"),
    ] {
        if !manifest.exists() {
            continue;
        }
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&wasm_target)
            // Flags meant for the host build must not leak into the guest build.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_MAKEFLAGS")
            .status()
            .expect("cannot run cargo to build the wasm plugins");
        assert!(
            status.success(),
            "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)",
            manifest.display()
        );
    }

    let release = wasm_target.join("wasm32-wasip2/release");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&release)
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "wasm"));
    files.sort();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let name = stem
            .strip_prefix("fnaa_plugin_")
            .unwrap_or(&stem)
            .replace('_', "-");
        let ident = name.to_uppercase().replace('-', "_");
        let _ = writeln!(
            consts,
            "/// The `{name}` plugin.\npub const {ident}: Plugin = Plugin {{ name: {name:?}, path: {path:?}, wasm: include_bytes!({path:?}) }};",
            path = path.display().to_string()
        );
        all.push(ident);
    }
    let _ = writeln!(
        consts,
        "/// Every embedded plugin.\npub const ALL: &[Plugin] = &[{}];",
        all.join(", ")
    );
    std::fs::write(out_dir.join("plugins.rs"), consts).expect("write plugins.rs");
}

/// Installs the `wasm32-wasip2` target through rustup when it is missing, so
/// that a plain `cargo build` works on a fresh machine.
fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let Ok(installed) = installed else { return }; // no rustup: the build below says what is missing
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == "wasm32-wasip2")
    {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "cannot install the wasm32-wasip2 target; run `rustup target add wasm32-wasip2`"
    );
}

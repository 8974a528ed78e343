//! Builds the plugin component and the default mapper for `wasm32-wasip2`,
//! composes them (the bridge's `kendo:bridge/mapper` import plugged with the
//! default mapper) so the binary can embed the result, and builds the test
//! suite's trapping mapper next to them.
//!
//! Each component gets its own target directory: a nested cargo on the outer
//! target directory would wait forever on the lock the outer build holds, and
//! the guest and the default mapper cannot share one because they build the
//! guest crate with different features into the same
//! `kendo_bridge_guest.wasm`.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

struct Guest {
    package: &'static str,
    /// Under `<workspace>/target/`.
    target_dir: &'static str,
    artifact: &'static str,
    env_var: &'static str,
    /// Only tests load it; a failure to build it is not the binary's.
    test_only: bool,
}

const GUESTS: [Guest; 3] = [
    Guest {
        package: "kendo-bridge-guest",
        target_dir: "guest",
        artifact: "kendo_bridge_guest.wasm",
        env_var: "KENDO_BRIDGE_SOCKET_COMPONENT",
        test_only: false,
    },
    Guest {
        package: "kendo-bridge-default-mapper",
        target_dir: "default-mapper",
        artifact: "kendo_bridge_default_mapper.wasm",
        env_var: "KENDO_BRIDGE_DEFAULT_MAPPER",
        test_only: false,
    },
    Guest {
        package: "kendo-bridge-trap-guest",
        target_dir: "guest-trap",
        artifact: "kendo_bridge_trap_guest.wasm",
        env_var: "KENDO_BRIDGE_TRAP_COMPONENT",
        test_only: true,
    },
];

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("CARGO_MANIFEST_DIR is not set; run this through cargo")?;
    let workspace = manifest_dir
        .parent()
        .ok_or("the host crate has no parent directory")?
        .to_path_buf();

    for watched in [
        "guest/src",
        "guest/Cargo.toml",
        "default-mapper",
        "testing/trap-guest",
        "wit",
        "Cargo.lock",
        "tests/fixtures",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    embed_fixtures(&workspace)?;

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    println!(
        "cargo:warning=building the kendo-bridge plugin component ({WASM_TARGET}, release); \
         the first build takes about half a minute"
    );
    let mut built = Vec::new();
    for guest in &GUESTS {
        let target_dir = workspace.join("target").join(guest.target_dir);
        if let Err(message) = build_guest(&cargo, &workspace, &target_dir, guest.package) {
            if !guest.test_only {
                return Err(message);
            }
            // A test-only component that no longer builds (the WIT moved
            // ahead of it) must not stop everyone's build: the tests that
            // load it read this file and fail with the error instead.
            let failure = target_dir.join("build-failed.txt");
            fs::create_dir_all(&target_dir)
                .and_then(|()| fs::write(&failure, &message))
                .map_err(|error| format!("{message}\n(and could not record it: {error})"))?;
            let first_error = message
                .lines()
                .find(|line| line.starts_with("error"))
                .unwrap_or("see the tests that load it");
            println!(
                "cargo:warning=the test-only {} component does not build, so its tests will fail: {first_error}",
                guest.package
            );
            println!("cargo:rustc-env={}={}", guest.env_var, failure.display());
            continue;
        }
        let _stale_failure = fs::remove_file(target_dir.join("build-failed.txt"));
        let artifact = target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(guest.artifact);
        if !artifact.is_file() {
            return Err(format!(
                "the {} build succeeded but {} is missing",
                guest.package,
                artifact.display()
            ));
        }
        println!("cargo:rustc-env={}={}", guest.env_var, artifact.display());
        built.push(artifact);
    }
    let [socket, default_mapper, ..] = built.as_slice() else {
        return Err("the plugin and the default mapper were not both built".to_owned());
    };
    let read = |path: &Path| {
        fs::read(path).map_err(|error| format!("could not read {}: {error}", path.display()))
    };
    let composed = kendo_bridge_compose::plug_mapper(&read(socket)?, &read(default_mapper)?)
        .map_err(|error| format!("composing the plugin with the default mapper: {error}"))?;
    // Beside the guest's own output, where spin.toml's
    // `[component.bridge.dependencies]` and the Spin test host find it.
    let path = workspace.join("target").join("guest").join(COMPOSED);
    fs::write(&path, composed)
        .map_err(|error| format!("could not write {}: {error}", path.display()))?;
    println!("cargo:rustc-env=KENDO_BRIDGE_COMPONENT={}", path.display());
    Ok(())
}

/// Writes `$OUT_DIR/fixtures.rs`: every file under `tests/fixtures/` as
/// `(relative path, contents)`, so `plugin check` carries its cases with the
/// binary.
fn embed_fixtures(workspace: &Path) -> Result<(), String> {
    let root = workspace.join("tests").join("fixtures");
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).map_err(|error| format!("reading {}: {error}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|error| format!("reading {}: {error}", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(&root) {
                files.push((relative.to_string_lossy().replace('\\', "/"), path.clone()));
            }
        }
    }
    files.sort();
    let mut code = String::from("&[\n");
    for (relative, path) in &files {
        code.push_str(&format!(
            "    ({relative:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    let out = env::var_os("OUT_DIR").ok_or("OUT_DIR is not set; run this through cargo")?;
    let target = Path::new(&out).join("fixtures.rs");
    fs::write(&target, code).map_err(|error| format!("writing {}: {error}", target.display()))
}

/// The built-in component: the plugin composed with the default mapper.
const COMPOSED: &str = "kendo_bridge_plugin.wasm";

fn build_guest(
    cargo: &OsString,
    workspace: &Path,
    target_dir: &Path,
    package: &str,
) -> Result<(), String> {
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", WASM_TARGET, "-p", package])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    // The outer build's flags, profile and target settings (and clippy's
    // wrapper under `cargo clippy -- -D warnings`) must not leak into a
    // wasm32 release build.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if is_outer_build_setting(key) {
            command.env_remove(key);
        }
    }
    command.env("CARGO_TARGET_DIR", target_dir);
    let output = command
        .output()
        .map_err(|error| format!("could not run {}: {error}", cargo.to_string_lossy()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hint = if stderr.contains("may not be installed")
        || stderr.contains("can't find crate for `core`")
    {
        format!("\nhint: install the target with `rustup target add {WASM_TARGET}`")
    } else {
        String::new()
    };
    Err(format!(
        "building the {package} component failed ({}):\n{stderr}{hint}",
        output.status
    ))
}

fn is_outer_build_setting(key: &str) -> bool {
    matches!(
        key,
        "RUSTFLAGS"
            | "CARGO_ENCODED_RUSTFLAGS"
            | "RUSTDOCFLAGS"
            | "CARGO_ENCODED_RUSTDOCFLAGS"
            | "RUSTC_WORKSPACE_WRAPPER"
            | "CLIPPY_ARGS"
            | "CARGO_TARGET_DIR"
    ) || key.starts_with("CARGO_BUILD_")
        || key.starts_with("CARGO_PROFILE_")
        || key.starts_with("CARGO_TARGET_")
        || key.starts_with("__CARGO")
        || key.starts_with("__CLIPPY")
}

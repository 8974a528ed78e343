//! Builds the plugin component for `wasm32-wasip2` so the binary can embed
//! it, and the test suite's trapping component next to it.
//!
//! Each component gets its own target directory: a nested cargo on the outer
//! target directory would wait forever on the lock the outer build holds, and
//! the two components cannot share one because they build the guest crate
//! with different features into the same `deps/kendo_bridge_guest.wasm`.

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

const GUESTS: [Guest; 2] = [
    Guest {
        package: "kendo-bridge-guest",
        target_dir: "guest",
        artifact: "kendo_bridge_guest.wasm",
        env_var: "KENDO_BRIDGE_COMPONENT",
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
        "testing/trap-guest",
        "wit",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    println!(
        "cargo:warning=building the kendo-bridge plugin component ({WASM_TARGET}, release); \
         the first build takes about half a minute"
    );
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
    }
    Ok(())
}

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

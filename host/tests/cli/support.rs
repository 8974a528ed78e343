//! Shared by the `cli_*` tests: runs the built `kendo-bridge` binary.

// Each test module uses its own subset.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// A path under `tests/fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    workspace().join("tests").join("fixtures").join(relative)
}

/// The binary with a clean environment for what it reads: no plugin or
/// config from the caller's shell, no log noise, and a compiled-plugin cache
/// shared by the CLI tests (so only the first run compiles).
pub fn kendo_bridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kendo-bridge"));
    command
        .env_remove("KENDO_BRIDGE_PLUGIN")
        .env_remove("KENDO_BRIDGE_MAPPER")
        .env_remove("KENDO_BRIDGE_CONFIG")
        .env_remove("RUST_LOG")
        .env(
            "KENDO_BRIDGE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kendo-bridge-cli-cache"),
        )
        .stdin(Stdio::null());
    command
}

/// Runs `command`, feeding `stdin` when given.
pub fn run(mut command: Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("kendo-bridge starts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        pipe.write_all(bytes).expect("stdin written");
    }
    child.wait_with_output().expect("kendo-bridge finishes")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Writes `contents` to `name` in a fresh temporary directory.
pub fn temp_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("temp file written");
    path
}

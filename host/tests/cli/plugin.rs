//! `kendo-bridge plugin` and `map --mapper`: the example mappers (built by
//! `./dev test` into the directory KENDO_BRIDGE_MAPPERS names) pass `plugin
//! check` and change the decisions they claim to; a failing mapper fails
//! the check; `plugin new` writes starters that build with one command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{assert_exit, fixture, kendo_bridge, run, stdout, temp_file};

/// The example mapper built for `lang`, or `None` (the test says it was
/// skipped) when KENDO_BRIDGE_MAPPERS is not set.
fn example(lang: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("KENDO_BRIDGE_MAPPERS") else {
        eprintln!(
            "skipped: KENDO_BRIDGE_MAPPERS is not set (./dev test builds the example mappers)"
        );
        return None;
    };
    let path = Path::new(&dir).join(format!("{lang}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    Some(path)
}

/// The binary, sharing the compiled-plugin cache `./dev test` set up for
/// the mappers (a JavaScript or Python mapper takes half a minute to
/// compile).
fn with_mapper_cache() -> Command {
    let mut command = kendo_bridge();
    if let Some(cache) = std::env::var_os("KENDO_BRIDGE_CACHE_DIR") {
        command.env("KENDO_BRIDGE_CACHE_DIR", cache);
    }
    command
}

fn check(mapper: &Path) -> (i32, String) {
    let mut command = with_mapper_cache();
    command.args(["plugin", "check"]).arg(mapper);
    let output = run(command, None);
    (output.status.code().unwrap_or(-1), stdout(&output))
}

fn map_seed_salesloft_call(mapper: &Path) -> serde_json::Value {
    let mut command = with_mapper_cache();
    command
        .args(["map", "--source", "salesloft", "--mapper"])
        .arg(mapper)
        .arg(fixture("seed-examples/inputs/salesloft-call.json"))
        .arg("--user")
        .arg(fixture("seed-examples/inputs/salesloft-user.json"));
    let output = run(command, None);
    assert_exit(&output, 0);
    serde_json::from_str(stdout(&output).trim()).expect("one JSON line")
}

fn line_of<'a>(report: &'a str, case: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.contains(&format!(" {case} ")))
        .unwrap_or_else(|| panic!("no line for {case}:\n{report}"))
}

#[test]
fn the_rust_example_passes_check_and_routes_jamies_calls() {
    let Some(mapper) = example("rust") else {
        return;
    };
    let (code, report) = check(&mapper);
    assert_eq!(code, 0, "{report}");
    let line = line_of(&report, "salesloft/seed-guide-example");
    assert!(line.starts_with("CHANGED"), "{line}");
    assert!(
        line.contains(
            "mapper: send \"Outbound - Connected (for Jamie Rivera)\" as emea-desk@yourco.com"
        ),
        "{line}"
    );
    assert!(
        line_of(&report, "hubspot/discovery-acme").starts_with("same"),
        "{report}"
    );
}

#[test]
fn the_rust_example_changes_what_map_prints() {
    let Some(mapper) = example("rust") else {
        return;
    };
    let printed = map_seed_salesloft_call(&mapper);
    assert_eq!(
        printed["payload"]["repEmail"], "emea-desk@yourco.com",
        "{printed}"
    );
}

#[test]
fn the_js_example_passes_check_and_skips_short_calls_except_booked_demos() {
    let Some(mapper) = example("js") else {
        return;
    };
    let (code, report) = check(&mapper);
    assert_eq!(code, 0, "{report}");
    let short = line_of(&report, "salesloft/seed-guide-example");
    assert!(short.starts_with("CHANGED"), "{short}");
    assert!(
        short.contains("mapper: skip (by-mapper: salesloft call 98765432 lasted 485 s"),
        "{short}"
    );
    let booked = line_of(&report, "aloware/inbound-call-with-user");
    assert!(
        booked.starts_with("same"),
        "a booked demo goes regardless: {booked}"
    );
}

#[test]
fn the_js_example_changes_what_map_prints() {
    let Some(mapper) = example("js") else {
        return;
    };
    let printed = map_seed_salesloft_call(&mapper);
    assert_eq!(printed["decision"], "skip", "{printed}");
    assert_eq!(printed["code"], "by-mapper", "{printed}");
}

#[test]
fn the_python_example_passes_check_and_adds_the_sentiment() {
    let Some(mapper) = example("python") else {
        return;
    };
    let (code, report) = check(&mapper);
    assert_eq!(code, 0, "{report}");
    assert!(
        line_of(&report, "salesloft/seed-guide-example").starts_with("CHANGED"),
        "{report}"
    );
    assert!(
        report.contains("metadata: +sentiment=Interested"),
        "{report}"
    );
}

#[test]
fn the_python_example_changes_what_map_prints() {
    let Some(mapper) = example("python") else {
        return;
    };
    let printed = map_seed_salesloft_call(&mapper);
    assert_eq!(
        printed["payload"]["metadata"]["sentiment"], "Interested",
        "{printed}"
    );
}

#[test]
fn check_fails_a_mapper_that_traps_on_one_of_the_given_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut call: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("seed-examples/inputs/salesloft-call.json"))
            .expect("the seed call"),
    )
    .expect("JSON");
    call["sentiment"] = "kendo-bridge-test-trap".into();
    let trapping = temp_file(&dir, "trapping-call.json", &call.to_string());
    let mut command = kendo_bridge();
    command
        .args([
            "plugin",
            "check",
            env!("KENDO_BRIDGE_TRAP_COMPONENT"),
            "--call",
        ])
        .arg(format!("salesloft={}", trapping.display()));
    let output = run(command, None);
    assert_exit(&output, 1);
    let report = stdout(&output);
    let line = line_of(&report, &format!("salesloft={}", trapping.display()));
    assert!(line.starts_with("FAIL"), "{report}");
    assert!(
        report.contains("the mapper trapped: kendo-bridge-test-trap"),
        "{report}"
    );
    assert!(report.contains("1 failed"), "{report}");
}

#[test]
fn check_fails_a_file_that_is_not_a_mapper_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bogus = temp_file(&dir, "not-a-mapper.wasm", "not wasm at all");
    let mut command = kendo_bridge();
    command.args(["plugin", "check"]).arg(&bogus);
    let output = run(command, None);
    assert_exit(&output, 1);
    let report = stdout(&output);
    assert!(report.starts_with("FAIL"), "{report}");
    assert!(report.contains("not-a-mapper.wasm"), "{report}");
}

/// `plugin new --lang LANG DIR`, then `DIR/build.sh`, as the starter's
/// message says; the language tools come from where `./dev test`
/// installed them.
fn new_and_build(lang: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let tools = Path::new(&std::env::var_os("KENDO_BRIDGE_MAPPERS")?)
        .parent()?
        .join("mapper-tools");
    let dir = tempfile::tempdir().expect("temp dir");
    let starter = dir.path().join("my-mapper");
    let mut command = kendo_bridge();
    command
        .args(["plugin", "new", "--lang", lang])
        .arg(&starter);
    let output = run(command, None);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("./build.sh"),
        "{}",
        stdout(&output)
    );

    let mut build = Command::new(starter.join("build.sh"));
    match lang {
        "rust" => {
            // The example mappers' target directory: wit-bindgen is built.
            build.env("CARGO_TARGET_DIR", tools.with_file_name("mappers"));
        }
        "js" => {
            #[cfg(unix)]
            std::os::unix::fs::symlink(tools.join("js/node_modules"), starter.join("node_modules"))
                .expect("node_modules linked");
        }
        _ => {
            build.env("COMPONENTIZE_PY", tools.join("py/bin/componentize-py"));
        }
    }
    let output = run(build, None);
    assert_exit(&output, 0);
    let wasm = starter.join("mapper.wasm");
    assert!(wasm.is_file(), "build.sh wrote no mapper.wasm");
    Some((dir, wasm))
}

#[test]
fn a_new_rust_starter_builds_with_one_command_and_passes_check() {
    let Some((_dir, wasm)) = new_and_build("rust") else {
        eprintln!("skipped: KENDO_BRIDGE_MAPPERS is not set");
        return;
    };
    let (code, report) = check(&wasm);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("metadata: +mappedBy=my-mapper (salesloft)"),
        "{report}"
    );
}

#[test]
fn a_new_js_starter_builds_with_one_command() {
    if new_and_build("js").is_none() {
        eprintln!("skipped: KENDO_BRIDGE_MAPPERS is not set");
    }
}

#[test]
fn a_new_python_starter_builds_with_one_command() {
    if new_and_build("python").is_none() {
        eprintln!("skipped: KENDO_BRIDGE_MAPPERS is not set");
    }
}

#[test]
fn plugin_new_refuses_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    temp_file(&dir, "existing.txt", "mine");
    let mut command = kendo_bridge();
    command
        .args(["plugin", "new", "--lang", "rust"])
        .arg(dir.path());
    let output = run(command, None);
    assert_exit(&output, 2);
}

#[test]
fn the_configs_mapper_is_used_by_map_without_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = temp_file(
        &dir,
        "bridge.toml",
        &format!(
            "mapper = {:?}\n[rules]\nmin_duration_seconds = 0\n",
            env!("KENDO_BRIDGE_TRAP_COMPONENT")
        ),
    );
    let mut call: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("seed-examples/inputs/salesloft-call.json"))
            .expect("the seed call"),
    )
    .expect("JSON");
    call["sentiment"] = "kendo-bridge-test-trap".into();
    let trapping = temp_file(&dir, "trapping-call.json", &call.to_string());
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "salesloft", "--config"])
        .arg(&config)
        .arg(&trapping);
    let output = run(command, None);
    // The trapping mapper ran: the built-in one would have mapped the call.
    assert_exit(&output, 3);
}

#[test]
fn compose_writes_the_plugin_with_the_mapper_plugged_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("kendo_bridge_plugin.wasm");
    let mut command = kendo_bridge();
    command
        .args([
            "plugin",
            "compose",
            env!("KENDO_BRIDGE_TRAP_COMPONENT"),
            "-o",
        ])
        .arg(&out);
    let output = run(command, None);
    assert_exit(&output, 0);
    let composed = std::fs::read(&out).expect("the composed plugin");
    assert!(composed.starts_with(b"\0asm"), "a WebAssembly file");
    assert!(
        composed.len()
            > std::fs::metadata(env!("KENDO_BRIDGE_TRAP_COMPONENT"))
                .map_or(0, |m| m.len() as usize),
        "the plugin and the mapper together"
    );
}

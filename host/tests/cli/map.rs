//! `kendo-bridge map`: the built binary's stdout JSON and exit codes.

use crate::support::{assert_exit, fixture, kendo_bridge, run, stderr, stdout, temp_file};
use serde_json::{Value, json};

fn seed(name: &str) -> String {
    fixture(&format!("seed-examples/inputs/{name}"))
        .display()
        .to_string()
}

fn seed_call() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(seed("salesloft-call.json")).expect("seed call readable"),
    )
    .expect("JSON")
}

/// The single JSON object the command printed.
fn printed_json(output: &std::process::Output) -> Value {
    let text = stdout(output);
    assert_eq!(text.lines().count(), 1, "one line on stdout: {text}");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[test]
fn salesloft_send_prints_the_kendo_payload() {
    let mut command = kendo_bridge();
    command.args(["map", "--source", "salesloft"]).args([
        seed("salesloft-call.json"),
        "--user".into(),
        seed("salesloft-user.json"),
        "--call-data-record".into(),
        seed("salesloft-call-data-record.json"),
    ]);
    let output = run(command, None);
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["decision"], "send");
    assert_eq!(printed["payload"]["callTitle"], "Outbound - Connected");
    assert_eq!(printed["payload"]["repEmail"], "jamie@yourco.com");
    assert_eq!(
        printed["payload"]["metadata"]["salesloftCallId"],
        "98765432"
    );
    assert!(printed.get("truncated").is_none(), "{printed}");
}

#[test]
fn salesloft_a_call_data_record_of_another_call_is_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let other = json!({"data": [
        {"id": 1, "direction": "inbound", "call": {"id": 11111111}}
    ]});
    let path = temp_file(&dir, "cdr.json", &other.to_string());
    let mut command = kendo_bridge();
    command.args(["map", "--source", "salesloft"]).args([
        seed("salesloft-call.json"),
        "--user".into(),
        seed("salesloft-user.json"),
    ]);
    command.arg("--call-data-record").arg(&path);
    let output = run(command, None);
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["payload"]["callTitle"], "Connected", "{printed}");
    assert!(
        printed["payload"]["metadata"]
            .get("salesloftDirection")
            .is_none(),
        "{printed}"
    );
}

#[test]
fn salesloft_call_in_a_data_envelope_on_stdin_maps_like_the_bare_record() {
    let envelope = json!({ "data": seed_call() }).to_string();
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "salesloft", "-", "--user"])
        .arg(seed("salesloft-user.json"));
    let output = run(command, Some(envelope.as_bytes()));
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(
        printed["payload"]["metadata"]["salesloftCallId"],
        "98765432"
    );
}

#[test]
fn salesloft_call_without_recordings_prints_a_no_media_skip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut call = seed_call();
    call["recordings"] = json!([]);
    let path = temp_file(&dir, "call.json", &call.to_string());
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "salesloft"])
        .arg(&path)
        .arg("--user")
        .arg(seed("salesloft-user.json"));
    let output = run(command, None);
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["decision"], "skip", "{printed}");
    assert_eq!(printed["code"], "no-media", "{printed}");
    assert!(printed["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn salesloft_recording_still_processing_prints_a_wait() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut call = seed_call();
    call["recordings"] = json!([
        { "url": null, "status": "completed", "recording_status": "processing" }
    ]);
    let path = temp_file(&dir, "call.json", &call.to_string());
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "salesloft"])
        .arg(&path)
        .arg("--user")
        .arg(seed("salesloft-user.json"));
    let output = run(command, None);
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["decision"], "wait", "{printed}");
    assert_eq!(printed["code"], "recording-processing", "{printed}");
}

#[test]
fn aloware_delivery_with_the_rep_directory_prints_the_guide_example() {
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "aloware"])
        .arg(seed("aloware-delivery.json"))
        .arg("--transcript")
        .arg(seed("aloware-transcript.txt"))
        .arg("--config")
        .arg(seed("aloware-reps.toml"));
    let output = run(command, None);
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["payload"]["repName"], "Nina Patel", "{printed}");
    assert_eq!(
        printed["payload"]["metadata"]["syncMethod"], "webhook",
        "{printed}"
    );
}

#[test]
fn aloware_unknown_event_prints_a_skip_with_the_ignore_code() {
    let mut command = kendo_bridge();
    command.args(["map", "--source", "aloware", "-"]);
    let output = run(
        command,
        Some(br#"{"event": "Contact-Merged-Into-Void", "body": {"id": 1}}"#),
    );
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["decision"], "skip", "{printed}");
    assert_eq!(printed["code"], "unknown-event", "{printed}");
}

#[test]
fn malformed_json_exits_2_naming_the_file_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = temp_file(&dir, "broken-call.json", r#"{"id": 1, "recordings": [}"#);
    let mut command = kendo_bridge();
    command.args(["map", "--source", "salesloft"]).arg(&path);
    let output = run(command, None);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains("broken-call.json"), "{message}");
    assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");
}

#[test]
fn a_missing_field_exits_2_naming_the_json_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut call = seed_call();
    call.as_object_mut().expect("object").remove("id");
    let path = temp_file(&dir, "call.json", &call.to_string());
    let mut command = kendo_bridge();
    command.args(["map", "--source", "salesloft"]).arg(&path);
    let output = run(command, None);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("`id`"), "{}", stderr(&output));
}

#[test]
fn an_unreadable_file_exits_2() {
    let mut command = kendo_bridge();
    command.args([
        "map",
        "--source",
        "hubspot",
        "/nonexistent/kendo-bridge/call.json",
    ]);
    let output = run(command, None);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("/nonexistent/kendo-bridge/call.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_invalid_config_exits_2_naming_the_file_line_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = temp_file(
        &dir,
        "bridge.toml",
        "[rules]\nmin_duration_seconds = \"ten\"\n",
    );
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "salesloft"])
        .arg(seed("salesloft-call.json"))
        .arg("--config")
        .arg(&config);
    let output = run(command, None);
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(message.contains("bridge.toml:2:"), "{message}");
    assert!(message.contains("rules.min_duration_seconds"), "{message}");
}

#[test]
fn an_input_of_another_source_exits_2() {
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "hubspot"])
        .arg(seed("hubspot-call.json"))
        .arg("--user")
        .arg(seed("salesloft-user.json"));
    let output = run(command, None);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--user"), "{}", stderr(&output));
}

#[test]
fn a_trapping_mapper_exits_3_and_the_next_run_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut call = seed_call();
    call["sentiment"] = json!("kendo-bridge-test-trap");
    let trapping = temp_file(&dir, "trapping-call.json", &call.to_string());
    let trap_component = env!("KENDO_BRIDGE_TRAP_COMPONENT");
    assert!(
        trap_component.ends_with(".wasm"),
        "testing/trap-guest does not build:\n{}",
        std::fs::read_to_string(trap_component).unwrap_or_default()
    );

    let mut command = kendo_bridge();
    command
        .args(["map", "--mapper", trap_component, "--source", "salesloft"])
        .arg(&trapping);
    let output = run(command, None);
    assert_exit(&output, 3);
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "error: the plugin trapped while mapping {}: ",
            trapping.display()
        )),
        "{message}"
    );
    assert!(message.contains("kendo-bridge-test-trap"), "{message}");

    let mut command = kendo_bridge();
    command
        .args(["map", "--mapper", trap_component, "--source", "salesloft"])
        .arg(seed("salesloft-call.json"))
        .arg("--user")
        .arg(seed("salesloft-user.json"));
    let output = run(command, None);
    assert_exit(&output, 0);
    assert_eq!(printed_json(&output)["decision"], "send");
}

#[test]
fn a_plugin_file_that_is_not_a_component_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bogus = temp_file(&dir, "plugin.wasm", "not wasm at all");
    let mut command = kendo_bridge();
    command
        .args(["map", "--source", "salesloft", "--plugin"])
        .arg(&bogus)
        .arg(seed("salesloft-call.json"));
    let output = run(command, None);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("plugin.wasm"),
        "{}",
        stderr(&output)
    );
}

/// A whole bridge configuration: two teams, Jamie routed to `emea`.
fn bridge_config(dir: &tempfile::TempDir, max_body_bytes: u64) -> std::path::PathBuf {
    temp_file(
        dir,
        "bridge.toml",
        &format!(
            "[kendo]\nmax_body_bytes = {max_body_bytes}\n\n\
             [[kendo.teams]]\nname = \"us\"\napi_key = {{ env = \"KENDO_KEY_US\" }}\n\n\
             [[kendo.teams]]\nname = \"emea\"\napi_key = {{ env = \"KENDO_KEY_EMEA\" }}\n\
             reps = [\"jamie@yourco.com\"]\n"
        ),
    )
}

fn map_seed_call(config: &std::path::Path) -> std::process::Output {
    let mut command = kendo_bridge();
    command.args(["map", "--source", "salesloft"]).args([
        seed("salesloft-call.json"),
        "--user".into(),
        seed("salesloft-user.json"),
        "--config".into(),
        config.display().to_string(),
    ]);
    run(command, None)
}

#[test]
fn map_names_the_team_serve_would_route_the_call_to() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = map_seed_call(&bridge_config(&dir, 5_000_000));
    assert_exit(&output, 0);
    let printed = printed_json(&output);
    assert_eq!(printed["team"], "emea", "{printed}");
}

#[test]
fn map_applies_the_configured_kendo_body_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = map_seed_call(&bridge_config(&dir, 200));
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(
        message.contains("cannot become a Kendo payload"),
        "{message}"
    );
}

#[test]
fn json_log_format_writes_one_object_a_line_with_the_events_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut call = seed_call();
    call["sentiment"] = json!("kendo-bridge-test-trap");
    let trapping = temp_file(&dir, "trapping-call.json", &call.to_string());
    let mut command = kendo_bridge();
    command
        .env("RUST_LOG", "kendo_bridge=debug")
        .args(["--log-format", "json", "map", "--source", "salesloft"])
        .args(["--mapper", env!("KENDO_BRIDGE_TRAP_COMPONENT")])
        .arg(&trapping);
    let output = run(command, None);
    assert_exit(&output, 3);
    let logged: Vec<Value> = stderr(&output)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let trap = logged
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("trapped"))
        })
        .unwrap_or_else(|| panic!("a JSON line about the trap in:\n{}", stderr(&output)));
    assert_eq!(trap["level"], "DEBUG", "{trap}");
    assert!(trap["fields"]["plugin"].is_string(), "{trap}");
}

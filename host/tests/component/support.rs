//! Shared by the `component_*` tests: fixtures, rules, and the plugin calls
//! they make through the embedded component inside wasmtime (never the
//! guest crate natively).

// Each test module uses its own subset.

use std::path::{Path, PathBuf};

use kendo_bridge::config::Config;
use kendo_bridge::plugin::{
    Instance, Plugin, PluginError, aloware, hubspot, kendo, salesloft,
    types::{Call, Decision, InputError, Rules, SyncMethod},
};
use serde_json::{Value, json};

/// Kendo's body limit, as the bridge uses it.
pub const MAX_BODY_BYTES: u64 = 5_000_000;

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// `tests/fixtures/` at the repository root.
pub fn fixtures() -> PathBuf {
    workspace().join("tests").join("fixtures")
}

/// A fixture's text; the panic names the file.
pub fn read_fixture(relative: &str) -> String {
    let path = fixtures().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read fixture {}: {error}", path.display()))
}

/// Every file under a directory, relative to `tests/fixtures/`, sorted.
pub fn files_under(relative_dir: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = fixtures();
    let dir = root.join(relative_dir);
    assert!(
        dir.is_dir(),
        "the fixture directory {} is missing",
        dir.display()
    );
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let mut relative: Vec<String> = files
        .iter()
        .map(|path| {
            path.strip_prefix(&root)
                .expect("under fixtures/")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    relative.sort();
    relative
}

/// The built-in plugin (the release component embedded in the binary).
pub fn plugin() -> Plugin {
    Plugin::embedded().expect("the embedded component loads")
}

/// A live instance of the built-in plugin.
pub fn instance() -> Instance {
    plugin()
        .instance()
        .expect("the embedded component instantiates")
}

/// Every rule at its default, an empty rep directory.
pub fn default_rules() -> Rules {
    Config::default().to_rules()
}

/// The rules of a config file under `tests/fixtures/`.
pub fn rules_from(relative: &str) -> Rules {
    let path = fixtures().join(relative);
    Config::load(&path)
        .unwrap_or_else(|error| panic!("{error}"))
        .to_rules()
}

pub fn salesloft_inputs(call: String) -> salesloft::CallInputs {
    salesloft::CallInputs {
        call,
        user: None,
        sentences: Vec::new(),
        call_data_record: None,
    }
}

pub fn hubspot_inputs(call: String) -> hubspot::CallInputs {
    hubspot::CallInputs {
        call,
        owner: None,
        dispositions: None,
        transcript: None,
        contacts: None,
        deals: None,
    }
}

pub fn map_salesloft(
    instance: &mut Instance,
    inputs: &salesloft::CallInputs,
    rules: &Rules,
    via: SyncMethod,
) -> Result<Result<Decision, InputError>, PluginError> {
    instance.call(|bridge, store| {
        bridge
            .kendo_bridge_salesloft()
            .call_map_call(store, inputs, rules, via)
    })
}

pub fn map_hubspot(
    instance: &mut Instance,
    inputs: &hubspot::CallInputs,
    rules: &Rules,
    via: SyncMethod,
) -> Result<Result<Decision, InputError>, PluginError> {
    instance.call(|bridge, store| {
        bridge
            .kendo_bridge_hubspot()
            .call_map_call(store, inputs, rules, via)
    })
}

pub fn read_aloware_event(
    instance: &mut Instance,
    body: &str,
) -> Result<Result<aloware::Event, InputError>, PluginError> {
    instance.call(|bridge, store| bridge.kendo_bridge_aloware().call_read_event(store, body))
}

pub fn map_aloware(
    instance: &mut Instance,
    body: &str,
    transcript: Option<&str>,
    rules: &Rules,
    via: SyncMethod,
) -> Result<Result<Decision, InputError>, PluginError> {
    map_aloware_awaiting(instance, body, transcript, false, rules, via)
}

/// `aloware.map-call`, saying whether the host still waits for a transcript.
pub fn map_aloware_awaiting(
    instance: &mut Instance,
    body: &str,
    transcript: Option<&str>,
    await_transcript: bool,
    rules: &Rules,
    via: SyncMethod,
) -> Result<Result<Decision, InputError>, PluginError> {
    instance.call(|bridge, store| {
        bridge.kendo_bridge_aloware().call_map_call(
            store,
            body,
            transcript,
            await_transcript,
            rules,
            via,
        )
    })
}

pub fn build_ingest(
    instance: &mut Instance,
    call: &Call,
    max_body_bytes: u64,
) -> Result<Result<kendo::IngestRequest, kendo::BuildError>, PluginError> {
    let options = kendo::PayloadOptions { max_body_bytes };
    instance.call(|bridge, store| {
        bridge
            .kendo_bridge_kendo()
            .call_build_ingest(store, call, options)
    })
}

/// A decision as `kendo-bridge map` prints it: a send carries the payload
/// Kendo would receive (built through the component, 5 MB limit).
pub fn decision_json(instance: &mut Instance, decision: Decision, context: &str) -> Value {
    match decision {
        Decision::Skip(skip) => json!({
            "decision": "skip",
            "code": skip.code.to_string(),
            "reason": skip.detail,
        }),
        Decision::Wait(wait) => json!({
            "decision": "wait",
            "code": wait.code.to_string(),
            "reason": wait.detail,
        }),
        Decision::Send(call) => {
            match build_ingest(instance, &call, MAX_BODY_BYTES)
                .unwrap_or_else(|error| panic!("{context}: build-ingest trapped: {error}"))
            {
                Ok(request) => {
                    let payload: Value =
                        serde_json::from_str(&request.body).unwrap_or_else(|error| {
                            panic!("{context}: the payload is not JSON: {error}")
                        });
                    let mut out = json!({ "decision": "send", "payload": payload });
                    if let Some(cut) = request.truncated {
                        out["truncated"] = json!({
                            "originalChars": cut.original_chars,
                            "keptChars": cut.kept_chars,
                        });
                    }
                    out
                }
                Err(error) => json!({
                    "decision": "send",
                    "buildError": error.explain().to_string(),
                }),
            }
        }
    }
}

/// Payload of a send, or a panic naming `context` and what came instead.
pub fn payload_of(value: &Value, context: &str) -> Value {
    assert_eq!(
        value["decision"], "send",
        "{context}: expected a send, got {value:#}"
    );
    value
        .get("payload")
        .cloned()
        .unwrap_or_else(|| panic!("{context}: no payload in {value:#}"))
}
